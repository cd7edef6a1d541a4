# Markdown to HTML with the `markdown` package from PyPI, installed at
# deploy from requirements.txt (a pure-Python wheel).
import sys

import markdown

print(markdown.markdown(sys.stdin.read()))
