from .stats import summary

__all__ = ["summary"]
