import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local bound to one address: 127.0.0.1, or the address
 * the system property shop.bind names (sam local's containers reach the
 * host through its Docker bridge's address).
 *
 * DynamoDBLocal.jar has no option for the listen address: its Jetty server
 * is created with a port alone and so binds every interface. This launcher
 * builds the server from the usual command-line arguments, then sets the
 * host of Jetty's connector before starting it.
 */
public final class LoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        String host = System.getProperty("shop.bind", "127.0.0.1");
        for (Connector connector : jetty.getConnectors()) {
            ((ServerConnector) connector).setHost(host);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host);
        proxy.join();
    }
}
