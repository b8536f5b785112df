/* Discovery of the variables under the configured NodeIds, as benthos-umh
 * does it: each start node is browsed recursively (depth <= 10) along
 * hierarchical references (forward, Objects and Variables), properties
 * (HasProperty / PropertyType) and variables with a null DataType are skipped,
 * and every variable found gets its attributes and the metadata a message
 * carries (tag name, group, path, ...), prepared once. */
#ifndef TP_OPCUA_BROWSE_H
#define TP_OPCUA_BROWSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "io/opcua/client.h"
#include "io/opcua/var_list.h"

#define UA_MAX_BROWSE_DEPTH 10

/* Browses the start nodes (NodeId texts) and fills vars. Problems with a
 * single node are logged and that node is skipped; a start NodeId that does
 * not parse is TP_CONFIG. */
int ua_browse(struct ua_client *cl, char *const *start, size_t n_start, struct ua_var_list *vars,
              struct tp_error *err);
/* Appends the server's CurrentTime (i=2258) as the heartbeat variable
 * (group "heartbeat", metadata opcua_heartbeat_message=true). 0 or TP_NOMEM. */
int ua_browse_add_heartbeat(struct ua_var_list *vars);

/* Characters other than [A-Za-z0-9_-] become '_' (benthos-umh's sanitize). */
void ua_sanitize(const char *s, size_t len, struct tp_buf *out);
/* Metadata text of attributes, as benthos-umh (gopcua) spells them. */
void ua_accesslevel_text(uint32_t level, struct tp_buf *out);
void ua_datatype_text(const struct ua_nodeid *id, struct tp_buf *out);

#endif
