/* The plugin registry: every input, processor and output plugin by name. */
#include "core/plugin.h"

#include <string.h>

extern const struct tp_input_plugin tp_input_stdin, tp_input_file, tp_input_simulator;
extern const struct tp_processor_plugin tp_processor_tag_processor, tp_processor_nodered_js,
    tp_processor_downsampler;
extern const struct tp_output_plugin tp_output_stdout, tp_output_file, tp_output_drop;
extern const struct tp_input_plugin tp_input_kafka;
extern const struct tp_output_plugin tp_output_kafka;
extern const struct tp_input_plugin tp_input_nats;
extern const struct tp_output_plugin tp_output_nats;
extern const struct tp_input_plugin tp_input_mqtt;
extern const struct tp_output_plugin tp_output_mqtt;
extern const struct tp_input_plugin tp_input_opcua;
extern const struct tp_input_plugin tp_input_uns;
extern const struct tp_output_plugin tp_output_uns;

static const struct tp_input_plugin *const inputs[] = {
    &tp_input_stdin, &tp_input_file, &tp_input_simulator,
    &tp_input_kafka, &tp_input_nats, &tp_input_mqtt,
    &tp_input_opcua, &tp_input_uns,  NULL};
static const struct tp_processor_plugin *const processors[] = {
    &tp_processor_tag_processor, &tp_processor_nodered_js, &tp_processor_downsampler, NULL};
static const struct tp_output_plugin *const outputs[] = {
    &tp_output_stdout, &tp_output_file, &tp_output_drop, &tp_output_kafka,
    &tp_output_nats,   &tp_output_mqtt, &tp_output_uns,  NULL};

const struct tp_input_plugin *tp_input_find(const char *name)
{
    for (size_t i = 0; inputs[i]; i++)
        if (strcmp(inputs[i]->name, name) == 0)
            return inputs[i];
    return NULL;
}

const struct tp_processor_plugin *tp_processor_find(const char *name)
{
    for (size_t i = 0; processors[i]; i++)
        if (strcmp(processors[i]->name, name) == 0)
            return processors[i];
    return NULL;
}

const struct tp_output_plugin *tp_output_find(const char *name)
{
    for (size_t i = 0; outputs[i]; i++)
        if (strcmp(outputs[i]->name, name) == 0)
            return outputs[i];
    return NULL;
}

/* Joins the names of a NULL-terminated plugin array (name is each struct's first member). */
#define JOIN_NAMES(arr, buf)                                                                       \
    do {                                                                                           \
        if (!(buf)[0])                                                                             \
            for (size_t i_ = 0; (arr)[i_]; i_++) {                                                 \
                if (i_)                                                                            \
                    strcat((buf), ", ");                                                           \
                strcat((buf), (arr)[i_]->name);                                                    \
            }                                                                                      \
    } while (0)

const char *tp_plugin_names(const char *kind)
{
    static char in_names[256], proc_names[256], out_names[256];
    if (strcmp(kind, "input") == 0) {
        JOIN_NAMES(inputs, in_names);
        return in_names;
    }
    if (strcmp(kind, "processor") == 0) {
        JOIN_NAMES(processors, proc_names);
        return proc_names;
    }
    JOIN_NAMES(outputs, out_names);
    return out_names;
}
