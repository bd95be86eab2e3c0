package tv5;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.cli.ExecutionContext;
import org.neo4j.commandline.admin.security.SetInitialPasswordCommand;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import picocli.CommandLine;

/**
 * Runs a Neo4j Community 5.26 DBMS with only a Bolt connector on loopback.
 *
 * <p>Usage: {@code java -cp 'target/classes:target/dependency/*' tv5.Neo4jLauncher [HOME_DIR]}
 *
 * <p>Environment:
 * <ul>
 *   <li>{@code NEO4J_PASSWORD} (required): password of the {@code neo4j} user.</li>
 *   <li>{@code NEO4J_HOME_DIR}: DBMS home (data/, logs/ under it) when no argument is given;
 *       default {@code data/neo4j} relative to the working directory.</li>
 *   <li>{@code NEO4J_BOLT_HOST} (default 127.0.0.1), {@code NEO4J_BOLT_PORT} (default 7687).</li>
 *   <li>{@code NEO4J_PAGECACHE} (default 512m), {@code NEO4J_TX_MEMORY} (default 1g, total for
 *       all running transactions).</li>
 *   <li>{@code NEO4J_CONF_FILE}: optional neo4j.conf-style settings file (e.g. the bulk-load profile
 *       of the benchmarks: fewer checkpoints); the settings above always win over it.</li>
 * </ul>
 *
 * <p>The password is never taken from the command line or a file: on the very first start (no
 * system database yet) it is written as the initial password before the DBMS (and so Bolt) comes
 * up, so there is no window with the default {@code neo4j/neo4j}; on every start it is also applied
 * with a parameterised {@code ALTER USER ... CHANGE NOT REQUIRED} on the system database, so a
 * changed {@code NEO4J_PASSWORD} takes effect on restart with an existing data directory.
 *
 * <p>Prints {@code TV5_NEO4J_READY bolt://host:port} once the password is in place. SIGTERM /
 * SIGINT shut the DBMS down cleanly (checkpoint) through a shutdown hook.
 */
public final class Neo4jLauncher {

    private static final PrintStream OUT = System.out;

    private Neo4jLauncher() {}

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        return (v == null || v.isBlank()) ? dflt : v.trim();
    }

    private static void log(String msg) {
        OUT.println(Instant.now() + " [tv5-neo4j] " + msg);
        OUT.flush();
    }

    public static void main(String[] args) throws Exception {
        Instant t0 = Instant.now();
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.isEmpty()) {
            System.err.println("NEO4J_PASSWORD is not set; refusing to start a DBMS without a password");
            System.exit(2);
        }
        if (password.length() < 8) {
            // Neo4j 5 rejects passwords shorter than dbms.security.auth_minimum_password_length (8).
            System.err.println("NEO4J_PASSWORD must be at least 8 characters long");
            System.exit(2);
        }
        Path home = Path.of(args.length > 0 ? args[0] : env("NEO4J_HOME_DIR", "data/neo4j"))
                .toAbsolutePath().normalize();
        String host = env("NEO4J_BOLT_HOST", "127.0.0.1");
        int port = Integer.parseInt(env("NEO4J_BOLT_PORT", "7687"));
        long pageCache = ByteUnit.parse(env("NEO4J_PAGECACHE", "512m"));
        long txMemory = ByteUnit.parse(env("NEO4J_TX_MEMORY", "1g"));

        Files.createDirectories(home);
        Path dataDir = home.resolve("data");
        boolean firstStart = !Files.isDirectory(dataDir.resolve("databases").resolve("system"));
        if (firstStart) {
            setInitialPassword(home, password);
        }

        log("starting Neo4j (home " + home + ", bolt " + host + ":" + port + ", pagecache "
                + pageCache + " B, tx memory " + txMemory + " B, first start: " + firstStart + ")");
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
        String confFile = env("NEO4J_CONF_FILE", "");
        if (!confFile.isEmpty()) {
            Path conf = Path.of(confFile).toAbsolutePath().normalize();
            if (!Files.isRegularFile(conf)) {
                System.err.println("NEO4J_CONF_FILE " + conf + " is not a file");
                System.exit(2);
            }
            builder.loadPropertiesFromFile(conf);
            log("settings loaded from " + conf);
        }
        DatabaseManagementService dbms = builder
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                .setConfig(GraphDatabaseSettings.memory_transaction_global_max_size, txMemory)
                // The databases are checkpointed and closed before the Bolt server's final stop; its
                // two default 5 s grace periods only made every SIGTERM take ~10 s more.
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutdown requested, stopping the DBMS");
            Instant s = Instant.now();
            try {
                dbms.shutdown();
                log("DBMS stopped cleanly in " + Duration.between(s, Instant.now()).toMillis() + " ms");
            } catch (Throwable e) {
                System.err.println("DBMS shutdown failed: " + e);
            } finally {
                stopped.countDown();
            }
        }, "tv5-neo4j-shutdown"));

        try {
            applyPassword(dbms, password);
        } catch (RuntimeException e) {
            System.err.println("could not set the neo4j password: " + e.getMessage());
            System.exit(3); // runs the shutdown hook
        }
        log("TV5_NEO4J_READY bolt://" + host + ":" + port + " in "
                + Duration.between(t0, Instant.now()).toMillis() + " ms");
        stopped.await();
    }

    /** First start only: the same thing as {@code neo4j-admin dbms set-initial-password}. */
    private static void setInitialPassword(Path home, String password) throws IOException {
        ExecutionContext ctx = new ExecutionContext(home, home.resolve("conf"));
        CommandLine cmd = new CommandLine(new SetInitialPasswordCommand(ctx));
        int rc = cmd.execute("--", password); // "--": a password may start with "-"
        if (rc != 0) {
            throw new IOException("set-initial-password failed with exit code " + rc);
        }
        log("initial password written for the first start");
    }

    /** Every start: parameterised ALTER USER on the system database (keeps NEO4J_PASSWORD authoritative). */
    private static void applyPassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            log("password of user neo4j set from NEO4J_PASSWORD");
        } catch (RuntimeException e) {
            String m = String.valueOf(e.getMessage()) + " " + String.valueOf(e.getCause());
            if (m.contains("Old password and new password cannot be the same")) {
                // Already the current password; make sure no change is pending.
                system.executeTransactionally("ALTER USER neo4j SET PASSWORD CHANGE NOT REQUIRED");
                log("password of user neo4j already matches NEO4J_PASSWORD");
            } else {
                throw e;
            }
        }
    }
}
