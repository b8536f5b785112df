/* Engine-wide switches of the JavaScript layer, visible outside src/js.
 * The "naive" mode (DESIGN 1) compiles every stage from source and creates a
 * fresh VM per message, as the original Go plugin did; it exists only so the
 * benchmark can show the cost of doing that. */
#ifndef TP_JS_VM_H
#define TP_JS_VM_H

/* Forces the naive engine on (1) or off (0) for processors created afterwards.
 * Without a call, the environment variable TAGPROC_ENGINE=naive turns it on. */
void tp_js_set_naive(int on);

/* 1 when processors created now use the naive engine. */
int tp_js_naive(void);

#endif
