/*
 * The peer: the seed's query as a Kafka Streams application, the way a Kafka Streams developer
 * writes an enrichment join.
 *
 *     INSERT INTO VipActions
 *     SELECT Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
 *     FROM Clicks INNER JOIN Users ON Clicks.user_id = Users.user_id
 *     WHERE Users.level = 'PLATINUM'
 *
 * Users is a GlobalKTable (every instance holds the whole table in RocksDB, restored before any
 * click is processed), the clicks a KStream keyed by user_id; KStream x GlobalKTable inner join,
 * filter, and the same VipAction JSON the enricher writes: event_id (a 128-bit digest of
 * topic/partition/offset: MD5 here, blake2b in the enricher, which the JDK lacks), user_id, name,
 * page, action, event_time (the click's timestamp, ISO-8601 UTC with milliseconds).
 *
 * One stream thread, at least once, commits every 100 ms (Streams' default is 30 s; the harness
 * times every system by its group's committed offsets, so a long interval would only add error at
 * the end), lz4 like the services' producers. Runs until SIGTERM:
 *
 *     java -cp 'classes:lib/*' VipJoin --bootstrap B --clicks C --users U --output O --group G
 *         --state-dir DIR
 */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;

public final class VipJoin {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final DateTimeFormatter EVENT_TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

  record User(String userId, String name, String level) {}

  record Click(String userId, JsonNode page, String action) {}

  record Joined(Click click, User user) {}

  /** JSON in, a record out; the store keeps the topic's bytes, so only reads parse. */
  static <T> Serde<T> jsonSerde(Class<T> type, java.util.function.Function<JsonNode, T> parse) {
    Serializer<T> serializer = (topic, value) -> {
      throw new UnsupportedOperationException("read-only serde for " + type.getSimpleName());
    };
    Deserializer<T> deserializer = (topic, data) -> {
      if (data == null) {
        return null;
      }
      try {
        return parse.apply(JSON.readTree(data));
      } catch (java.io.IOException e) {
        throw new org.apache.kafka.common.errors.SerializationException(e);
      }
    };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  static User user(JsonNode node) {
    return new User(
        node.get("user_id").asText(), node.get("name").asText(), node.get("level").asText());
  }

  static Click click(JsonNode node) {
    return new Click(node.get("user_id").asText(), node.get("page"), node.get("action").asText());
  }

  /** The VipAction: needs the record's partition, offset and timestamp, so a processor. */
  static final class VipAction implements FixedKeyProcessor<String, Joined, String> {
    private final MessageDigest md5;
    private FixedKeyProcessorContext<String, String> context;

    VipAction() {
      try {
        md5 = MessageDigest.getInstance("MD5");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public void init(FixedKeyProcessorContext<String, String> context) {
      this.context = context;
    }

    @Override
    public void process(FixedKeyRecord<String, Joined> record) {
      var meta = context.recordMetadata().orElseThrow();
      String source = meta.topic() + "/" + meta.partition() + "/" + meta.offset();
      String eventId = HexFormat.of().formatHex(md5.digest(source.getBytes(StandardCharsets.UTF_8)));
      Joined joined = record.value();
      ObjectNode out = JSON.createObjectNode();
      out.put("event_id", eventId);
      out.put("user_id", joined.user().userId());
      out.put("name", joined.user().name());
      out.set("page", joined.click().page());
      out.put("action", joined.click().action());
      out.put("event_time", EVENT_TIME.format(Instant.ofEpochMilli(record.timestamp())));
      context.forward(record.withValue(out.toString()));
    }
  }

  static Map<String, String> options(String[] args) {
    Map<String, String> found = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      found.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    for (String required : new String[] {"bootstrap", "clicks", "users", "output", "group", "state-dir"}) {
      if (!found.containsKey(required)) {
        System.err.println("missing --" + required);
        System.exit(2);
      }
    }
    return found;
  }

  public static void main(String[] args) throws InterruptedException {
    Map<String, String> option = options(args);
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, option.get("group"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, option.get("bootstrap"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.STATE_DIR_CONFIG, option.get("state-dir"));
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    props.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");

    StreamsBuilder builder = new StreamsBuilder();
    GlobalKTable<String, User> users =
        builder.globalTable(
            option.get("users"),
            Consumed.with(Serdes.String(), jsonSerde(User.class, VipJoin::user)),
            Materialized.as("users"));
    builder.stream(option.get("clicks"), Consumed.with(Serdes.String(), jsonSerde(Click.class, VipJoin::click)))
        .join(users, (key, click) -> click.userId(), Joined::new)
        .filter((key, joined) -> "PLATINUM".equalsIgnoreCase(joined.user().level()))
        .processValues(VipAction::new)
        .to(option.get("output"), Produced.with(Serdes.String(), Serdes.String()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close();
      stopped.countDown();
    }));
    streams.setUncaughtExceptionHandler(exception -> {
      exception.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_APPLICATION;
    });
    streams.start();
    stopped.await();
  }
}
