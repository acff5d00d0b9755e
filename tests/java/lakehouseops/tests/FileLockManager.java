package lakehouseops.tests;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A lock manager for Iceberg's Hadoop catalog that holds across processes on one machine.
 *
 * The Hadoop catalog commits by "check that version N+1 does not exist, then rename to it"; on a local file system
 * the rename overwrites, so two processes committing the same version at the same instant would both succeed and
 * one commit would be lost. The catalog takes its lock manager's lock around that check and rename: with this one
 * (an OS file lock per version file, plus a semaphore per entity inside the JVM) the tests' concurrent writer
 * processes commit as safely as writers do on Glue or a REST catalog.
 */
public class FileLockManager implements org.apache.iceberg.LockManager {
  private final Map<String, Semaphore> local = new ConcurrentHashMap<>();
  private final Map<String, FileLock> held = new ConcurrentHashMap<>();
  private File dir = new File(System.getProperty("java.io.tmpdir"), "lakehouse-ops-locks");
  private long timeoutMs = 120_000L;

  @Override
  public void initialize(Map<String, String> properties) {
    if (properties.containsKey("lock.dir")) {
      dir = new File(properties.get("lock.dir"));
    }
    if (properties.containsKey("lock.acquire-timeout-ms")) {
      timeoutMs = Long.parseLong(properties.get("lock.acquire-timeout-ms"));
    }
    dir.mkdirs();
  }

  @Override
  public boolean acquire(String entityId, String ownerId) {
    Semaphore semaphore = local.computeIfAbsent(entityId, k -> new Semaphore(1));
    try {
      if (!semaphore.tryAcquire(timeoutMs, TimeUnit.MILLISECONDS)) {
        return false;
      }
      FileChannel channel = new RandomAccessFile(new File(dir, hash(entityId) + ".lock"), "rw").getChannel();
      held.put(entityId, channel.lock());
      return true;
    } catch (InterruptedException | IOException e) {
      semaphore.release();
      return false;
    }
  }

  @Override
  public boolean release(String entityId, String ownerId) {
    FileLock lock = held.remove(entityId);
    if (lock == null) {
      return false;
    }
    try {
      lock.release();
      lock.channel().close();
    } catch (IOException e) {
      return false;
    } finally {
      local.get(entityId).release();
    }
    return true;
  }

  @Override
  public void close() {}

  private static String hash(String text) {
    try {
      StringBuilder out = new StringBuilder();
      for (byte b : MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8))) {
        out.append(String.format("%02x", b));
      }
      return out.toString();
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
