// A Java program that logs with java.util.logging, one line per record plus the
// exception's stack trace (caused-by chain included), then dies of an uncaught exception.
//
//   javac Main.java && java -Djava.util.logging.SimpleFormatter.format=... Main
import java.io.IOException;
import java.util.logging.Level;
import java.util.logging.Logger;

public class Main {
    static final Logger LOG = Logger.getLogger("support.bot");

    static void lookup(String id) throws IOException {
        throw new IOException("crm down for order " + id);
    }

    static void handle(String id) {
        try {
            lookup(id);
        } catch (IOException e) {
            throw new IllegalStateException("order lookup failed", e);
        }
    }

    public static void main(String[] args) {
        LOG.info("started");
        try {
            handle("42");
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "request failed", e);
        }
        try {
            Object reply = null;
            reply.toString();
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "empty reply", e);
        }
        LOG.info("shutting down");
        int turns = args.length;
        System.out.println(10 / turns);
    }
}
