/* Shared by the uns input and output (benthos-umh's `uns` plugins): the one
 * Kafka topic of the Unified Namespace and the defaults both sides use. Both
 * are built on the Kafka connector (io/kafka/internal.h). */
#ifndef TP_UNS_INTERNAL_H
#define TP_UNS_INTERNAL_H

#define TP_UNS_TOPIC "umh.messages"
#define TP_UNS_BROKER_DEFAULT "localhost:9092"

#endif
