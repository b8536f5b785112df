/* Unit tests for the downsampler processor against hand-computed series:
 * deadband (absolute, percent, threshold 0, max_time heartbeat), strings and
 * booleans on change, swinging door, late points, overrides by pattern and
 * topic, pass-through of non time-series messages, per-topic state, config
 * errors at their position. */
#include "js_test_util.h"

#include <inttypes.h>

#include "core/log.h"

extern const struct tp_processor_plugin tp_processor_downsampler;

#define DS_PATH "pipeline.processors[0].downsampler"
#define TOPIC "umh.v1.ent.site._historian.level"

static void ds_open(struct proc_fx *f, const char *yaml)
{
    fx_must_open(f, &tp_processor_downsampler, DS_PATH, yaml, 1);
}

static struct tp_msg *point(const char *topic, int64_t t, const char *value)
{
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"timestamp_ms\":%" PRId64 ",\"value\":%s}", t, value);
    return mk_msg(payload, "umh_topic", topic, NULL);
}

/* Runs n points (ts[i], vals[i]) of topic; returns "K" per kept point and "."
 * per filtered one (a filtered point must be one `filtered` drop). */
static const char *series(struct proc_fx *f, const char *topic, const int64_t *ts,
                          const char *const *vals, size_t n)
{
    static char got[64];
    assert_true(n < sizeof(got));
    for (size_t i = 0; i < n; i++) {
        fx_run(f, point(topic, ts[i], vals[i]));
        if (f->out.len == 1) {
            assert_int_equal(f->drops.n, 0);
            got[i] = 'K';
        } else {
            one_drop(f, TP_DROP_FILTERED, "downsampler");
            got[i] = '.';
        }
    }
    got[n] = '\0';
    return got;
}

static const int64_t seconds[] = {0, 1000, 2000, 3000, 4000, 5000, 6000, 7000};

static void test_deadband_absolute(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {deadband: {threshold: 0.5}}\n");
    /* as in the benthos-umh docs' table; a change of exactly the threshold is kept */
    const char *v[] = {"10.0", "10.25", "10.5", "10.25", "11"};
    assert_string_equal(series(&f, TOPIC, seconds, v, 5), "K.K.K");
    fx_run(&f, point(TOPIC, 9000, "11.25"));
    const char *why = one_drop(&f, TP_DROP_FILTERED, "downsampler");
    assert_non_null(strstr(why, "deadband: change 0.25 from the last kept value 11 is below 0.5"));
    fx_close(&f);
}

static void test_deadband_zero_and_percent(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {}\n"); /* nothing set: deadband, any change */
    const char *v[] = {"5", "5", "6", "6.0", "5", "5"};
    assert_string_equal(series(&f, TOPIC, seconds, v, 6), "K.K.K.");
    fx_close(&f);

    ds_open(&f, "default: {deadband: {threshold_percent: 10}}\n");
    /* 10% of the last kept value: 109 (9 < 10), 111 (11 >= 10), 100 (11 <
     * 11.1), 99 (12 >= 11.1) */
    const char *p[] = {"100", "109", "111", "100", "99"};
    assert_string_equal(series(&f, TOPIC, seconds, p, 5), "K.K.K");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"), "deadband(threshold_percent=10)");
    fx_close(&f);
}

static void test_max_time_heartbeat(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {deadband: {threshold: 0.5, max_time: 10s}}\n");
    const int64_t t[] = {0, 5000, 10000, 12000, 19999, 20000};
    const char *v[] = {"10", "10.1", "10.1", "10.2", "10.2", "10.2"};
    assert_string_equal(series(&f, TOPIC, t, v, 6), "K.K..K");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"), "deadband(threshold=0.5,max_time=10s)");
    fx_close(&f);
}

static void test_strings_and_booleans_on_change(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {deadband: {threshold: 100}}\n");
    const char *v[] = {"\"AUTO\"", "\"AUTO\"", "\"MANUAL\"", "true", "true", "false", "\"1\"", "1"};
    assert_string_equal(series(&f, TOPIC, seconds, v, 8), "K.KK.KKK");
    fx_close(&f);
}

static void test_swinging_door(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {swinging_door: {threshold: 1}}\n");
    /* a ramp of slope 1/s stays inside the door opened at (0, 0) with +-1;
     * at (4 s, 0) the door closes (lowest upper slope 0.25/s < highest lower
     * slope 0.667/s): kept, new door from there; 0.5 and 1.0 fit it again */
    const char *v[] = {"0", "1", "2", "3", "0", "0.5", "1.0"};
    assert_string_equal(series(&f, TOPIC, seconds, v, 5), "K...K");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"), "swinging_door(threshold=1)");
    assert_string_equal(series(&f, TOPIC, seconds + 5, v + 5, 2), "..");
    /* older than the newest point seen (6 s): passed on as late */
    fx_run(&f, point(TOPIC, 4000, "0"));
    assert_string_equal(out_meta(&f, 0, "late_oos"), "true");
    fx_close(&f);

    /* deadband on the same series keeps far more */
    ds_open(&f, "default: {deadband: {threshold: 1}}\n");
    assert_string_equal(series(&f, TOPIC, seconds, v, 7), "KKKKK.K");
    fx_close(&f);
}

static void test_late_points(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {deadband: {threshold: 0}}\n"
                "overrides:\n"
                "  - pattern: \"*.alarm\"\n"
                "    late_policy: {late_policy: drop}\n");
    const int64_t t[] = {0, 1000};
    const char *v[] = {"1", "2"};
    assert_string_equal(series(&f, TOPIC, t, v, 2), "KK");
    /* passthrough (the default): forwarded with late_oos, state unchanged */
    fx_run(&f, point(TOPIC, 500, "7"));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "late_oos"), "true");
    assert_null(out_meta(&f, 0, "downsampled_by"));
    fx_run(&f, point(TOPIC, 2000, "2"));
    one_drop(&f, TP_DROP_FILTERED, "downsampler");

    const char *alarm = "umh.v1.ent.site._historian.alarm";
    assert_string_equal(series(&f, alarm, t, v, 2), "KK");
    fx_run(&f, point(alarm, 500, "7"));
    const char *why = one_drop(&f, TP_DROP_FILTERED, "downsampler");
    assert_non_null(strstr(why, "late point: timestamp_ms 500 is older than 1000"));
    fx_close(&f);
}

static void test_overrides(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default:\n"
                "  deadband: {threshold: 10, max_time: 1h}\n"
                "overrides:\n"
                "  - topic: umh.v1.ent.site._historian.critical\n"
                "    swinging_door: {threshold: 0.5}\n"
                "  - pattern: \"*.temperature\"\n"
                "    deadband: {threshold: 0.1}\n"
                "  - pattern: \"temp_*\"\n"
                "    deadband: {threshold_percent: 1}\n");
    const char *v[] = {"20", "20.15", "20.3"};
    assert_string_equal(series(&f, "umh.v1.ent.site._historian.temperature", seconds, v, 3), "KKK");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"), "deadband(threshold=0.1,max_time=1h)");
    /* matched on the last segment only */
    assert_string_equal(series(&f, "umh.v1.ent.site._historian.temp_inlet", seconds, v, 3), "K.K");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"),
                        "deadband(threshold_percent=1,max_time=1h)");
    /* no override: the default */
    assert_string_equal(series(&f, "umh.v1.ent.site._historian.pressure", seconds, v, 3), "K..");
    const char *c[] = {"0", "1", "2", "0"};
    assert_string_equal(series(&f, "umh.v1.ent.site._historian.critical", seconds, c, 4), "K..K");
    assert_string_equal(out_meta(&f, 0, "downsampled_by"),
                        "swinging_door(threshold=0.5,max_time=1h)");
    fx_close(&f);
}

static void test_per_topic_state_and_pass_through(void **state)
{
    (void)state;
    struct proc_fx f;
    ds_open(&f, "default: {deadband: {threshold: 1}}\n");
    const char *a = "umh.v1.e._historian.a", *b = "umh.v1.e._historian.b";
    fx_run(&f, point(a, 0, "1"));
    assert_int_equal(f.out.len, 1);
    fx_run(&f, point(b, 0, "1.5"));
    assert_int_equal(f.out.len, 1); /* b's first point, whatever a did */
    fx_run(&f, point(a, 1000, "1.5"));
    one_drop(&f, TP_DROP_FILTERED, "downsampler");
    fx_run(&f, point(b, 1000, "2.5"));
    assert_int_equal(f.out.len, 1);

    /* not time-series points: unchanged, never filtered */
    const char *other[] = {"{\"value\":1}", "[1,2]", "plain text",
                           "{\"timestamp_ms\":\"x\",\"value\":1}"};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < 4; i++) {
            fx_run(&f, mk_msg(other[i], "umh_topic", a, NULL));
            assert_int_equal(f.out.len, 1);
            assert_string_equal(out_payload(&f, 0), other[i]);
            assert_null(out_meta(&f, 0, "downsampled_by"));
        }
    fx_run(&f, mk_msg("{\"timestamp_ms\":5,\"value\":1}", "mqtt_topic", "x", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "mqtt_topic"), "x");
    fx_close(&f);
}

/* Benthos/Go durations: compound, fractional, every unit */
static void test_durations(void **state)
{
    (void)state;
    const char *cases[][2] = {{"1h30m", "90m"},   {"1.5s", "1500ms"},  {"2h", "2h"},
                              {"250ms", "250ms"}, {"3000000us", "3s"}, {"0.5m", "30s"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128], want[128];
        snprintf(yaml, sizeof(yaml), "default: {deadband: {threshold: 2, max_time: %s}}\n",
                 cases[i][0]);
        snprintf(want, sizeof(want), "deadband(threshold=2,max_time=%s)", cases[i][1]);
        struct proc_fx f;
        ds_open(&f, yaml);
        fx_run(&f, point(TOPIC, 0, "1"));
        assert_string_equal(out_meta(&f, 0, "downsampled_by"), want);
        fx_close(&f);
    }
}

static void expect_error(const char *yaml, const char *want, int line)
{
    struct proc_fx f;
    struct tp_error err = {0};
    assert_int_not_equal(fx_open(&f, &tp_processor_downsampler, DS_PATH, yaml, 1, &err), 0);
    if (!strstr(err.msg, want))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
    if (line)
        assert_int_equal(err.line, line);
    fx_close(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("default:\n  deadband: {max_time: 1x}\n", "expected duration", 2);
    expect_error("default:\n  deadband: {max_time: 5}\n", "expected duration", 2);
    expect_error("default:\n  deadband: {max_time: h}\n", "expected duration", 2);
    expect_error("default:\n  swinging_door: {treshold: 1}\n", "unknown key", 2);
    expect_error("default:\n  late_policy: {late_policy: keep}\n", "expected one of", 2);
    expect_error("default: {deadband: {threshold: -1}}\n",
                 "threshold: expected a number of at least 0, got -1", 1); /* the table's range */
    expect_error("default: {deadband: {threshold: 1, threshold_percent: 2}}\n",
                 "exclude each other", 0);
    expect_error("overrides:\n  - deadband: {threshold: 1}\n",
                 "overrides[0]: give exactly one of pattern and topic", 0);
}

int main(void)
{
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadband_absolute),
        cmocka_unit_test(test_deadband_zero_and_percent),
        cmocka_unit_test(test_max_time_heartbeat),
        cmocka_unit_test(test_strings_and_booleans_on_change),
        cmocka_unit_test(test_swinging_door),
        cmocka_unit_test(test_late_points),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_per_topic_state_and_pass_through),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
