import java.lang.instrument.Instrumentation;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Stands in for LocalStack's DynamoDB Local agent (ddb-local-loader-0.1.jar,
 * fetched at run time from a host no registry mirrors). LocalStack starts
 * `java -javaagent:<this jar> -jar DynamoDBLocal.jar -port N ...`, and the
 * jar alone binds every interface; this agent runs first and starts the
 * server itself from the same arguments, its Jetty connector bound to
 * 127.0.0.1, so the jar's own main never runs. What the real agent adds
 * (a patch for more than 20 indexes a table) is not needed by the shop's
 * table.
 */
public final class LoopbackLoader {
    public static void premain(String agentArgs, Instrumentation instrumentation) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(serverArguments());
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        for (Connector connector : jetty.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        System.out.println("DynamoDB Local (LocalStack's) listening on 127.0.0.1");
        proxy.join();
        System.exit(0);
    }

    /** The process's arguments after `-jar <jar>`: DynamoDB Local's own. */
    private static String[] serverArguments() {
        String[] all = ProcessHandle.current().info().arguments().orElse(new String[0]);
        List<String> rest = new ArrayList<>();
        boolean afterJar = false;
        for (int i = 0; i < all.length; i++) {
            if (afterJar) {
                rest.add(all[i]);
            } else if (all[i].equals("-jar")) {
                i++;
                afterJar = true;
            }
        }
        return rest.toArray(new String[0]);
    }
}
