// RAII owners for librdkafka's C handles (exporters/kafka only; no other module includes this).
// Every handle the kafka module creates is held by one of these from the moment it exists.
//
// Thread-safety: as the handles they own (rd_kafka_t is thread-safe; the others belong to one thread).
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>

namespace hsmaudit::exporters::kafka::detail {

struct KafkaDeleter {
    void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct ConfDeleter {
    void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
};
struct TopicDeleter {
    void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
};
struct HeadersDeleter {
    void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
};
struct MessageDeleter {
    void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
};
struct PartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t* p) const { rd_kafka_topic_partition_list_destroy(p); }
};
struct MetadataDeleter {
    void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
struct QueueDeleter {
    void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

}  // namespace hsmaudit::exporters::kafka::detail
