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
 */
#include "faas_prelude.h" /* faas_prelude[], faas_prelude_len */

static JSRuntime *faas_rt;
static JSContext *faas_ctx;
static JSValue faas_start;
static char *faas_init_argv[] = { "qjs", NULL };

/* quickjs.c, patched by build-qjs.sh. */
void faas_fresh_context(JSContext *ctx);

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
    JSValue start;

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
    /* From here on no module may be imported (see build-qjs.sh, 2c). */
    JS_SetModuleLoaderFunc(rt, faas_refuse_import, NULL, NULL);
    start = JS_Eval(ctx, (const char *)faas_prelude, faas_prelude_len, "/faas/prelude.js",
                    JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(start) || !JS_IsFunction(ctx, start)) {
        js_std_dump_error(ctx);
        abort();
    }
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
