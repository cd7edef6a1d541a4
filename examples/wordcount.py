# wordcount: reads {"text": "..."} and prints how many words and lines the
# text has and its three most frequent words (ties broken alphabetically);
# {"text": "The cat and the dog.\nThe cat!"} gives
#   {"words":7,"lines":2,"top":[{"word":"the","count":3},{"word":"cat","count":2},{"word":"and","count":1}]}
# A word is a maximal run of Unicode letters, lowercased character by
# character. Lines are the "\n"-terminated lines plus a last unterminated one
# ("" has 0 lines, "a" 1, "a\n" 1, "a\nb" 2).
# A payload nesting arrays/objects deeper than 1000 levels is refused.
# On bad input it prints {"error":"..."} on stderr and exits 1.
# Same contract, byte for byte, as wordcount.go (Go's encoding/json and
# unicode packages): the notes below say where Python needs help to agree.
# (Letters are those of each runtime's Unicode tables: Python 3.11 has Unicode
# 14, Go 1.27 a newer one, so characters added since Unicode 14 may differ.)
import itertools
import json
import re
import sys
from collections import Counter

GO_JSON_DEPTH = 10000  # deeper is not valid JSON to Go's encoding/json
MAX_DEPTH = 1000  # deeper is refused (wordcount.go's limit)
# Runs of word characters other than digits and "_": every letter, plus the
# few numeric characters (such as "²") that are split off below.
WORD_RUN = re.compile(r"[^\W\d_]+")


def fail(msg):
    sys.stderr.write(json.dumps({"error": msg}, separators=(",", ":")) + "\n")
    sys.exit(1)


def reject_constant(name):
    raise ValueError("not JSON: " + name)  # NaN, Infinity, -Infinity


def depth(value):
    """Nesting depth of arrays and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in value)
    return deepest


def words_of(text):
    for run in WORD_RUN.findall(text):
        if run.isalpha():
            yield run
        else:
            for is_letter, chars in itertools.groupby(run, str.isalpha):
                if is_letter:
                    yield "".join(chars)


def lower(word):
    # Go lowercases rune by rune (simple case mapping); str.lower() differs
    # only for "İ" (to "i" + U+0307) and a final "Σ" (to "ς").
    return word.replace("\u0130", "i").replace("\u03a3", "\u03c3").lower()


def main():
    # Go's decoder turns invalid UTF-8 into U+FFFD (not a letter) too.
    payload = sys.stdin.buffer.read().decode("utf-8", "replace")
    sys.setrecursionlimit(GO_JSON_DEPTH + 100)
    try:
        data = json.loads(payload, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        fail("payload is not valid JSON")
    levels = depth(data)
    if levels > GO_JSON_DEPTH:
        fail("payload is not valid JSON")
    if levels > MAX_DEPTH:
        fail("payload nests deeper than 1000 levels")
    if not isinstance(data, dict):
        fail("payload must be a JSON object")
    if "text" not in data:
        fail("missing key text")
    text = data["text"]
    if not isinstance(text, str):
        fail("text must be a string")

    words = [lower(w) for w in words_of(text)]
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    top = sorted(Counter(words).items(), key=lambda wc: (-wc[1], wc[0]))[:3]

    result = {
        "words": len(words),
        "lines": lines,
        "top": [{"word": w, "count": c} for w, c in top],
    }
    out = json.dumps(result, separators=(",", ":"), ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(out.encode("utf-8"))


main()
