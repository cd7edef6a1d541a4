<?php
function faas_example_psr4(): array {
    return ['Acme\\Slug\\' => dirname(__DIR__) . '/acme/slug/src'];
}
