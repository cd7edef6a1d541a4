def normalise(text):
    return " ".join(text.split()).lower()
