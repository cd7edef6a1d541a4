# Starts a Python function (the interpreter runs this file, then the
# function's /faas/code.py as __main__, or a project's entry file, named
# by FAAS_CODE, with its directory first on sys.path as `python main.py`
# has it, so the project's modules and packages import): puts the `faas` module
# (/faas/lib/faas.py) on the path, and has `urllib.request` go through the
# platform's HTTP client when a function imports it. The traceback of an
# uncaught exception is the one Python would print for code.py alone.
#
# The call then ends as `python code.py` would (atexit handlers run,
# stdout and stderr flushed, the same exit status) but without finalising
# the interpreter: its instance is thrown away, and tearing down every
# module of the snapshot took 28 ms, most of a hello's time.


def _boot(_status, _exit):
    import sys

    sys.path.append('/faas/lib')
    # A call's stdout and stderr are captured, not a terminal (though WASI
    # says character device): tracebacks in plain text, as Python prints
    # them into a file.
    try:
        import _colorize

        _colorize.COLORIZE = False
    except Exception:
        pass

    class UrllibHook:
        """Wraps the loader of urllib.request so that, once loaded, it gets
        the faas handler (nothing is imported before a function asks)."""

        def find_spec(self, name, path=None, target=None):
            if name != 'urllib.request':
                return None
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(name, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
            return spec

    class _Loader:
        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            self.inner.exec_module(module)
            import faas

            faas.install_urllib(module)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    sys.meta_path.insert(0, UrllibHook())

    import os

    script = os.environ.get('FAAS_CODE') or '/faas/code.py'
    if script != '/faas/code.py':
        sys.path.insert(0, script.rsplit('/', 1)[0])
        # The pure-Python wheels requirements.txt installed at deploy, after
        # the project's own modules.
        if os.path.isdir('/faas/app/.python_packages'):
            sys.path.insert(1, '/faas/app/.python_packages')
    main = sys.modules['__main__'].__dict__
    keep = ('__name__', '__doc__', '__package__', '__spec__', '__builtins__')
    for name in [n for n in main if n not in keep]:
        del main[name]
    main['__file__'] = script
    main['__cached__'] = None
    sys.argv[0] = script
    with open(script, 'rb') as f:
        code = compile(f.read(), script, 'exec')
    try:
        exec(code, main)
    except SystemExit as e:
        status = _status(e.code)
    except BaseException as e:
        # Without this frame: what `python code.py` prints.
        e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        status = 1
    else:
        status = 0
    _exit(status)


def _status(code):
    """The exit status of `sys.exit(code)`, as the interpreter sets it."""
    import sys

    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _exit(status):
    """What the interpreter's exit does that a call can see, then the
    exit itself."""
    import atexit
    import os
    import sys

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status)


# Passed in: _boot empties __main__ (these names too) for the function.
_boot(_status, _exit)
