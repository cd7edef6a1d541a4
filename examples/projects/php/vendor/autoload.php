<?php
// What `composer install` writes, in small: a PSR-4 autoloader.
require_once __DIR__ . '/composer/autoload_psr4.php';
spl_autoload_register(function (string $class): void {
    foreach (faas_example_psr4() as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = $dir . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    }
});
