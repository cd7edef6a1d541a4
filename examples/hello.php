<?php
// Greets, then echoes whatever it gets on stdin (byte for byte, like hello.c).
$payload = file_get_contents('php://stdin');
echo "Hello from FAAS!\n";
echo $payload;
