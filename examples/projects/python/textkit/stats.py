def summary(text):
    words = text.split()
    return {"words": len(words), "unique": len(set(words)), "longest": max(words, key=len) if words else ""}
