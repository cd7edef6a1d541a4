<?php
// A PHP project: a file of its own (src/format.php, by relative require)
// and a Composer vendor/ shipped with it (its autoload.php loads Acme\Slug).
require __DIR__ . '/vendor/autoload.php';
require_once 'src/format.php';

$text = trim(file_get_contents('php://stdin'));
echo format_answer(\Acme\Slug\Slugger::slug($text)), "\n";
