<?php
namespace Acme\Slug;

final class Slugger {
    public static function slug(string $text): string {
        return trim(preg_replace('/[^a-z0-9]+/', '-', strtolower($text)), '-');
    }
}
