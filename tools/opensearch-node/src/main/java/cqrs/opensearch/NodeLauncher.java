package cqrs.opensearch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Starts a single-node OpenSearch 2.19 cluster in this JVM, with the modules
 * a stock distribution ships that we need (HTTP transport, analysis, painless,
 * mapper-extras, reindex) loaded as classpath plugins.
 *
 * <p>Usage: {@code java -cp <classes:lib/*> cqrs.opensearch.NodeLauncher key=value ...}
 * where each argument is an OpenSearch setting (like {@code -Ekey=value} of the
 * real distribution). {@code path.home} is required.
 *
 * <p>The plugin set can be changed with the system property
 * {@code cqrs.opensearch.plugins} (comma separated class names; empty = none).
 *
 * <p>An embedded node runs no bootstrap checks, no jar-hell check and no
 * security manager. It is meant for local development and tests only.
 */
public final class NodeLauncher {

    static final String DEFAULT_PLUGINS = String.join(
        ",",
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexPlugin"
    );

    /** Node subclass only to reach the protected constructor taking classpath plugins. */
    static final class ClasspathPluginsNode extends Node {
        ClasspathPluginsNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private NodeLauncher() {}

    public static void main(String[] args) throws Exception {
        final Logger logger = LogManager.getLogger(NodeLauncher.class);

        Settings.Builder builder = Settings.builder()
            .put("cluster.name", "cqrs-opensearch")
            .put("node.name", "cqrs-node-0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            .put("transport.port", "9300-9400")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("node.max_local_storage_nodes", 1);
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, got [" + arg + "]");
            }
            builder.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Settings settings = builder.build();
        String home = settings.get("path.home");
        if (home == null) {
            throw new IllegalArgumentException("path.home=... is required");
        }
        Path homePath = Paths.get(home).toAbsolutePath();
        Path configPath = homePath.resolve("config");
        Files.createDirectories(configPath);

        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), configPath, () -> settings.get("node.name"));

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        String pluginList = System.getProperty("cqrs.opensearch.plugins", DEFAULT_PLUGINS);
        for (String name : pluginList.split(",")) {
            name = name.trim();
            if (name.isEmpty()) {
                continue;
            }
            plugins.add(Class.forName(name).asSubclass(Plugin.class));
        }

        final Node node;
        try {
            node = new ClasspathPluginsNode(environment, plugins);
        } catch (Throwable t) {
            logger.error("node failed to initialize", t);
            System.exit(1);
            return;
        }
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                logger.info("stopping node");
                node.close();
                if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                    logger.warn("node did not close within 30s");
                }
            } catch (Exception e) {
                logger.warn("error while closing node", e);
            } finally {
                stopped.countDown();
                org.apache.logging.log4j.core.config.Configurator.shutdown(
                    (org.apache.logging.log4j.core.LoggerContext) LogManager.getContext(false));
            }
        }, "cqrs-opensearch-shutdown"));

        long t0 = System.nanoTime();
        try {
            node.start();
        } catch (Throwable t) {
            logger.error("node failed to start", t);
            System.exit(1);
        }
        logger.info("node started in {} ms with plugins {}",
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), pluginList);

        // Node threads may all be daemons: keep the JVM alive until a signal arrives.
        stopped.await();
    }
}
