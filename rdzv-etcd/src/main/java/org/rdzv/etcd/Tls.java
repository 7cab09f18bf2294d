package org.rdzv.etcd;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/** Key and trust managers from PEM files, as python-etcd takes them (certificate, key, CA). */
final class Tls {
  private static final Pattern BLOCK =
      Pattern.compile("-----BEGIN ([A-Z ]+)-----([^-]+)-----END \\1-----");
  private static final char[] NO_PASSWORD = new char[0];

  private Tls() {}

  /** An SSL context for {@code connection}, or the JDK default when it names no files. */
  static SSLContext context(EtcdConnection connection) {
    try {
      KeyManagerFactory keys = keyManagers(connection);
      TrustManagerFactory trust = trustManagers(connection);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(
          keys == null ? null : keys.getKeyManagers(),
          trust == null ? null : trust.getTrustManagers(),
          null);
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("Cannot set up TLS for etcd: " + e.getMessage(), e);
    }
  }

  /** Key managers holding the client certificate and key, or {@code null} without a certificate. */
  static KeyManagerFactory keyManagers(EtcdConnection connection) throws GeneralSecurityException {
    if (connection.clientCert() == null) {
      return null;
    }
    List<Certificate> chain = certificates(connection.clientCert());
    Path keyFile =
        connection.clientKey() != null ? connection.clientKey() : connection.clientCert();
    PrivateKey key = privateKey(keyFile);
    KeyStore store = emptyStore();
    store.setKeyEntry("client", key, NO_PASSWORD, chain.toArray(Certificate[]::new));
    KeyManagerFactory factory =
        KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    factory.init(store, NO_PASSWORD);
    return factory;
  }

  /** Trust managers for the CA certificate, or {@code null} to trust the JDK's default CAs. */
  static TrustManagerFactory trustManagers(EtcdConnection connection)
      throws GeneralSecurityException {
    if (connection.caCert() == null) {
      return null;
    }
    KeyStore store = emptyStore();
    int i = 0;
    for (Certificate certificate : certificates(connection.caCert())) {
      store.setCertificateEntry("ca" + i++, certificate);
    }
    TrustManagerFactory factory =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    factory.init(store);
    return factory;
  }

  private static KeyStore emptyStore() throws GeneralSecurityException {
    KeyStore store = KeyStore.getInstance("PKCS12");
    try {
      store.load(null, null);
    } catch (IOException e) {
      throw new GeneralSecurityException(e);
    }
    return store;
  }

  private static List<Certificate> certificates(Path file) throws GeneralSecurityException {
    CertificateFactory factory = CertificateFactory.getInstance("X.509");
    List<Certificate> result = new ArrayList<>();
    for (Block block : blocks(file)) {
      if (block.type.equals("CERTIFICATE")) {
        result.add(factory.generateCertificate(new ByteArrayInputStream(block.der)));
      }
    }
    if (result.isEmpty()) {
      throw new GeneralSecurityException("no PEM certificate in " + file);
    }
    return result;
  }

  private static PrivateKey privateKey(Path file) throws GeneralSecurityException {
    for (Block block : blocks(file)) {
      switch (block.type) {
        case "PRIVATE KEY" -> {
          byte[] der = block.der;
          for (String algorithm : new String[] {"RSA", "EC", "Ed25519"}) {
            try {
              return KeyFactory.getInstance(algorithm)
                  .generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
              // try the next algorithm
            }
          }
          throw new GeneralSecurityException("unsupported private key algorithm in " + file);
        }
        case "RSA PRIVATE KEY" -> {
          return KeyFactory.getInstance("RSA")
              .generatePrivate(new PKCS8EncodedKeySpec(wrapPkcs1(block.der)));
        }
        default -> {}
      }
    }
    throw new GeneralSecurityException("no PEM private key (PKCS#8 or PKCS#1 RSA) in " + file);
  }

  /** Wraps a PKCS#1 RSA key in a PKCS#8 envelope. */
  private static byte[] wrapPkcs1(byte[] pkcs1) {
    byte[] algorithm = {
      0x30,
      0x0d,
      0x06,
      0x09,
      0x2a,
      (byte) 0x86,
      0x48,
      (byte) 0x86,
      (byte) 0xf7,
      0x0d,
      0x01,
      0x01,
      0x01,
      0x05,
      0x00
    };
    byte[] version = {0x02, 0x01, 0x00};
    byte[] octets = der((byte) 0x04, pkcs1);
    byte[] body = new byte[version.length + algorithm.length + octets.length];
    System.arraycopy(version, 0, body, 0, version.length);
    System.arraycopy(algorithm, 0, body, version.length, algorithm.length);
    System.arraycopy(octets, 0, body, version.length + algorithm.length, octets.length);
    return der((byte) 0x30, body);
  }

  private static byte[] der(byte tag, byte[] content) {
    int n = content.length;
    byte[] length;
    if (n < 0x80) {
      length = new byte[] {(byte) n};
    } else if (n < 0x100) {
      length = new byte[] {(byte) 0x81, (byte) n};
    } else if (n < 0x10000) {
      length = new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n};
    } else {
      length = new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
    }
    byte[] out = new byte[1 + length.length + n];
    out[0] = tag;
    System.arraycopy(length, 0, out, 1, length.length);
    System.arraycopy(content, 0, out, 1 + length.length, n);
    return out;
  }

  private record Block(String type, byte[] der) {}

  private static List<Block> blocks(Path file) throws GeneralSecurityException {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new GeneralSecurityException("cannot read " + file + ": " + e.getMessage(), e);
    }
    List<Block> blocks = new ArrayList<>();
    Matcher m = BLOCK.matcher(text);
    while (m.find()) {
      blocks.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2).strip())));
    }
    return blocks;
  }
}
