# A Python project: a package (textkit/) beside the entry file.
import json
import sys

from textkit import summary
from textkit.clean import normalise

text = normalise(sys.stdin.read())
print(json.dumps(summary(text)))
