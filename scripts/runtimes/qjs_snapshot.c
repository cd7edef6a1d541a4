/* faas: QuickJS-ng pre-initialised at build time.
 *
 * build-qjs.sh appends this file to qjs.c (it uses qjs.c's static helpers) and
 * has main() call faas_main() once faas_ready is set. `wasmtime wizer` then runs
 * the exported faas-initialize once, at build time: it creates the runtime and
 * context exactly as `qjs --std` does, evaluates the prelude (embedded from
 * prelude.js as faas_prelude.h) and keeps the start function the prelude
 * evaluates to. Wizer writes the resulting linear memory out as the module's
 * data segments, so every call's fresh instance starts with all of that done
 * and only runs start(args) on the function's code.
 *
 * What a snapshot would otherwise share between calls is renewed in faas_main:
 * Math.random's seed (from WASI random_get), the performance.now() origin and
 * the C stack top QuickJS measures recursion from. Environment variables, argv
 * and the function's code are read by start() on every call.
 *
 * ES modules (`import`) are resolved and read by the prelude (resolveImport and
 * loadImport, properties of the start function; this file keeps its own
 * references, so replacing them changes nothing): the normalizer and loader below only call them, compile
 * what they return and refuse any name that is not a file path or one of the
 * prelude's node: builtins, so QuickJS's own qjs:std, qjs:os and qjs:bjson
 * (std.open, os.exec, ...) stay out of reach even if function code tampered
 * with what the prelude's resolver uses.
 */
#include "faas_prelude.h" /* faas_prelude[], faas_prelude_len */

static JSRuntime *faas_rt;
static JSContext *faas_ctx;
static JSValue faas_start;
static char *faas_init_argv[] = { "qjs", NULL };

/* quickjs.c, patched by build-qjs.sh. */
void faas_fresh_context(JSContext *ctx);
extern bool faas_parse_only;

static JSValue faas_resolve_import; /* prelude: (base, specifier) -> path or "node:NAME" */
static JSValue faas_load_import;    /* prelude: name -> source text, or {exports, names} */

/* compileModule(source, filename) for the prelude's deploy-time check and its
 * ES-module detection: parses an ES module without loading what it imports
 * (faas_parse_only, see build-qjs.sh 2f); throws its SyntaxError. The runtime
 * keeps the unlinked module under `filename`. */
static JSValue faas_compile_module(JSContext *ctx, JSValueConst this_val, int argc,
                                   JSValueConst *argv)
{
    const char *src, *name;
    size_t len;
    JSValue fn;

    if (argc < 2)
        return JS_ThrowTypeError(ctx, "compileModule(source, filename)");
    src = JS_ToCStringLen(ctx, &len, argv[0]);
    if (!src)
        return JS_EXCEPTION;
    name = JS_ToCString(ctx, argv[1]);
    if (!name) {
        JS_FreeCString(ctx, src);
        return JS_EXCEPTION;
    }
    faas_parse_only = true;
    fn = JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    faas_parse_only = false;
    JS_FreeCString(ctx, src);
    JS_FreeCString(ctx, name);
    if (JS_IsException(fn))
        return fn;
    JS_FreeValue(ctx, fn);
    return JS_UNDEFINED;
}

static char *faas_module_normalize(JSContext *ctx, const char *base, const char *name,
                                   void *opaque)
{
    JSValue args[2], r;
    const char *s;
    char *out = NULL;

    if (strncmp(name, "qjs:", 4) == 0) {
        JS_ThrowTypeError(ctx, "cannot import '%s': QuickJS's own modules are not available to functions",
                          name);
        return NULL;
    }
    args[0] = JS_NewString(ctx, base);
    args[1] = JS_NewString(ctx, name);
    r = JS_Call(ctx, faas_resolve_import, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, args[1]);
    if (JS_IsException(r))
        return NULL;
    s = JS_ToCString(ctx, r);
    JS_FreeValue(ctx, r);
    if (!s)
        return NULL;
    if (s[0] == '/' || strncmp(s, "node:", 5) == 0)
        out = js_strdup(ctx, s);
    else
        JS_ThrowTypeError(ctx, "cannot import '%s'", name);
    JS_FreeCString(ctx, s);
    return out;
}

static JSValue faas_import_record(JSContext *ctx, const char *name)
{
    JSValue arg = JS_NewString(ctx, name);
    JSValue r = JS_Call(ctx, faas_load_import, JS_UNDEFINED, 1, (JSValueConst *)&arg);
    JS_FreeValue(ctx, arg);
    return r;
}

/* import.meta.url, .filename and .dirname, as Node gives them. */
static int faas_set_import_meta(JSContext *ctx, JSValueConst fn, const char *name)
{
    JSValue meta = JS_GetImportMeta(ctx, JS_VALUE_GET_PTR(fn));
    const char *slash = strrchr(name, '/');
    size_t len = strlen(name);
    char *url;

    if (JS_IsException(meta))
        return -1;
    url = js_malloc(ctx, len + 8);
    if (!url) {
        JS_FreeValue(ctx, meta);
        return -1;
    }
    memcpy(url, "file://", 7);
    memcpy(url + 7, name, len + 1);
    JS_DefinePropertyValueStr(ctx, meta, "url", JS_NewString(ctx, url), JS_PROP_C_W_E);
    js_free(ctx, url);
    JS_DefinePropertyValueStr(ctx, meta, "filename", JS_NewString(ctx, name), JS_PROP_C_W_E);
    JS_DefinePropertyValueStr(ctx, meta, "dirname",
                              slash == name ? JS_NewString(ctx, "/")
                                            : JS_NewStringLen(ctx, name, slash ? slash - name : 0),
                              JS_PROP_C_W_E);
    JS_FreeValue(ctx, meta);
    return 0;
}

/* For each of a record's export names (an array of strings): declare it on m
 * (add), or set it to the exports object's property of that name. */
static int faas_each_export(JSContext *ctx, JSModuleDef *m, JSValueConst rec, bool add,
                            JSValueConst exports)
{
    JSValue names = JS_GetPropertyStr(ctx, rec, "names");
    int64_t n = 0, i;
    int ret = 0;

    if (JS_GetLength(ctx, names, &n) < 0) {
        JS_FreeValue(ctx, names);
        return -1;
    }
    for (i = 0; i < n && ret == 0; i++) {
        JSValue v = JS_GetPropertyInt64(ctx, names, i);
        const char *s = JS_ToCString(ctx, v);
        JS_FreeValue(ctx, v);
        if (!s)
            ret = -1;
        else if (add)
            ret = JS_AddModuleExport(ctx, m, s);
        else {
            /* A getter that throws fails the import (never stores JS_EXCEPTION); a
             * name that was not declared at load (the record changed) too. */
            JSValue value = JS_GetPropertyStr(ctx, exports, s);
            if (JS_IsException(value))
                ret = -1;
            else if (JS_SetModuleExport(ctx, m, s, value) < 0) {
                JS_ThrowTypeError(ctx, "module '%s' changed its exports while loading", s);
                ret = -1;
            }
        }
        if (s)
            JS_FreeCString(ctx, s);
    }
    JS_FreeValue(ctx, names);
    return ret;
}

/* Evaluation of a builtin, CommonJS or JSON module imported from an ES module:
 * its exports object is the default export, and its keys the named ones. */
static int faas_init_exports(JSContext *ctx, JSModuleDef *m)
{
    JSAtom atom = JS_GetModuleName(ctx, m);
    const char *name = JS_AtomToCString(ctx, atom);
    JSValue rec, exports;
    int ret;

    JS_FreeAtom(ctx, atom);
    if (!name)
        return -1;
    rec = faas_import_record(ctx, name); /* the prelude keeps it: the same record again */
    JS_FreeCString(ctx, name);
    if (JS_IsException(rec))
        return -1;
    exports = JS_GetPropertyStr(ctx, rec, "exports");
    ret = faas_each_export(ctx, m, rec, false, exports);
    if (ret == 0)
        ret = JS_SetModuleExport(ctx, m, "default", JS_DupValue(ctx, exports));
    JS_FreeValue(ctx, exports);
    JS_FreeValue(ctx, rec);
    return ret;
}

static JSModuleDef *faas_module_loader(JSContext *ctx, const char *name, void *opaque)
{
    JSValue rec = faas_import_record(ctx, name), fn;
    JSModuleDef *m;
    const char *src;
    size_t len;

    if (JS_IsException(rec))
        return NULL;
    if (!JS_IsString(rec)) {
        m = JS_NewCModule(ctx, name, faas_init_exports);
        if (!m || JS_AddModuleExport(ctx, m, "default") < 0
            || faas_each_export(ctx, m, rec, true, JS_UNDEFINED) < 0)
            m = NULL;
        JS_FreeValue(ctx, rec);
        return m;
    }
    src = JS_ToCStringLen(ctx, &len, rec);
    JS_FreeValue(ctx, rec);
    if (!src)
        return NULL;
    fn = JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    JS_FreeCString(ctx, src);
    if (JS_IsException(fn))
        return NULL;
    if (faas_set_import_meta(ctx, fn, name) < 0) {
        JS_FreeValue(ctx, fn);
        return NULL;
    }
    m = JS_VALUE_GET_PTR(fn);
    JS_FreeValue(ctx, fn); /* the runtime's module list keeps it */
    return m;
}

__attribute__((export_name("faas-initialize")))
void faas_initialize(void)
{
    static const char std_globals[] =
        "import * as bjson from 'qjs:bjson';\n"
        "import * as std from 'qjs:std';\n"
        "import * as os from 'qjs:os';\n"
        "globalThis.bjson = bjson;\n"
        "globalThis.std = std;\n"
        "globalThis.os = os;\n";
    JSRuntime *rt;
    JSContext *ctx;
    JSValue start, global;

    qjs__argc = 1;
    qjs__argv = faas_init_argv;
    rt = JS_NewRuntime();
    if (!rt)
        abort();
    js_std_set_worker_new_context_func(JS_NewCustomContext);
    js_std_init_handlers(rt);
    ctx = JS_NewCustomContext(rt);
    if (!ctx)
        abort();
    JS_SetModuleLoaderFunc(rt, NULL, js_module_loader, NULL);
    JS_SetHostPromiseRejectionTracker(rt, js_std_promise_rejection_tracker, NULL);
    js_std_add_helpers(ctx, 0, NULL);
    if (eval_buf(ctx, std_globals, sizeof(std_globals) - 1, "<input>", JS_EVAL_TYPE_MODULE))
        abort();
    /* No module may be imported while the prelude runs (see build-qjs.sh, 2c); it
     * takes compileModule into its closure and deletes the global. */
    JS_SetModuleLoaderFunc(rt, faas_refuse_import, NULL, NULL);
    global = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, global, "__faas_compile_module",
                      JS_NewCFunction(ctx, faas_compile_module, "compileModule", 2));
    JS_FreeValue(ctx, global);
    start = JS_Eval(ctx, (const char *)faas_prelude, faas_prelude_len, "/faas/prelude.js",
                    JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(start) || !JS_IsFunction(ctx, start)) {
        js_std_dump_error(ctx);
        abort();
    }
    faas_resolve_import = JS_GetPropertyStr(ctx, start, "resolveImport");
    faas_load_import = JS_GetPropertyStr(ctx, start, "loadImport");
    if (!JS_IsFunction(ctx, faas_resolve_import) || !JS_IsFunction(ctx, faas_load_import))
        abort();
    /* From here on, imports go through the prelude's resolver (see the top). */
    JS_SetModuleLoaderFunc(rt, faas_module_normalize, faas_module_loader, NULL);
    faas_rt = rt;
    faas_ctx = ctx;
    faas_start = start;
    faas_ready = true;
}

/* One call: start(argv[1..]) on the pre-initialised context, then the event
 * loop until nothing is pending (the prelude exits through std.exit). */
static int faas_main(int argc, char **argv)
{
    JSContext *ctx = faas_ctx;
    JSValue args, ret;
    int i;

    JS_UpdateStackTop(faas_rt);
    faas_fresh_context(ctx);
    args = JS_NewArray(ctx);
    for (i = 1; i < argc; i++)
        JS_SetPropertyUint32(ctx, args, i - 1, JS_NewString(ctx, argv[i]));
    ret = JS_Call(ctx, faas_start, JS_UNDEFINED, 1, (JSValueConst *)&args);
    JS_FreeValue(ctx, args);
    if (JS_IsException(ret)) {
        js_std_dump_error(ctx);
        return 1;
    }
    JS_FreeValue(ctx, ret);
    if (js_std_loop(ctx)) {
        js_std_dump_error(ctx);
        return 1;
    }
    return 0;
}
