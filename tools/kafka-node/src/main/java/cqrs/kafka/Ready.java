package cqrs.kafka;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

/**
 * Waits until a Kafka node answers a metadata request (the admin client's describeCluster).
 *
 * <p>Usage: {@code Ready BOOTSTRAP TIMEOUT_SECONDS}. Exits 0 and prints the cluster id and the
 * broker count once the cluster answers with at least one broker and a controller; exits 1 when
 * the deadline passes first, with the last error on stderr.
 *
 * <p>When {@code KAFKA_SASL_USERNAME} is set it logs in with SASL over plaintext, as the crate's
 * {@code KafkaConfig::from_env} does: {@code KAFKA_SASL_PASSWORD}, and {@code
 * KAFKA_SASL_MECHANISM} ({@code PLAIN}, {@code SCRAM-SHA-256} or {@code SCRAM-SHA-512}; default
 * {@code PLAIN}). The password is never printed.
 */
public final class Ready {
    private Ready() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2) {
            System.err.println("usage: Ready BOOTSTRAP TIMEOUT_SECONDS");
            System.exit(2);
        }
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        String username = System.getenv("KAFKA_SASL_USERNAME");
        if (username != null) {
            String password = System.getenv("KAFKA_SASL_PASSWORD");
            if (password == null) {
                System.err.println("KAFKA_SASL_USERNAME is set but KAFKA_SASL_PASSWORD is not");
                System.exit(2);
            }
            String mechanism = System.getenv().getOrDefault("KAFKA_SASL_MECHANISM", "PLAIN").toUpperCase();
            String module = mechanism.equals("PLAIN")
                    ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            props.put("security.protocol", "SASL_PLAINTEXT");
            props.put("sasl.mechanism", mechanism);
            props.put("sasl.jaas.config", module + " required username=\"" + jaasEscape(username)
                    + "\" password=\"" + jaasEscape(password) + "\";");
        }
        String last = "no answer";
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    var cluster = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000));
                    int brokers = cluster.nodes().get(5, TimeUnit.SECONDS).size();
                    var controller = cluster.controller().get(5, TimeUnit.SECONDS);
                    String id = cluster.clusterId().get(5, TimeUnit.SECONDS);
                    if (brokers > 0 && controller != null && !controller.isEmpty()) {
                        System.out.println("cluster " + id + ": " + brokers + " broker(s)");
                        admin.close(Duration.ofSeconds(1));
                        System.exit(0);
                    }
                    last = "no broker or controller yet";
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(250);
            }
        }
        System.err.println("no answer from " + bootstrap + ": " + last);
        System.exit(1);
    }

    private static String jaasEscape(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
