<?php
function format_answer(string $slug): string {
    return json_encode(['slug' => $slug, 'length' => strlen($slug)]);
}
