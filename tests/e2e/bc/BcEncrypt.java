/*
 * BcEncrypt: an independent S/MIME encryptor for the inbound interop tests,
 * built on BouncyCastle (Debian libbcpkix-java, libbcprov-java and
 * libbcutil-java).  It encrypts a MIME entity to one recipient certificate
 * and writes a DER ContentInfo:
 *
 *   key transport / agreement   rsa15  RSA PKCS#1 v1.5 (JceKeyTransRecipientInfoGenerator)
 *                               oaep   RSA-OAEP, SHA-256 and MGF1-SHA-256
 *                               ecdh   ephemeral-static ECDH, ECDH_SHA256KDF, AES256_WRAP
 *                                      (JceKeyAgreeRecipientInfoGenerator)
 *   content                     cbc    AES-256-CBC EnvelopedData (CMSEnvelopedDataGenerator)
 *                               gcm    AES-256-GCM AuthEnvelopedData
 *                                      (CMSAuthEnvelopedDataGenerator)
 *
 * Usage: java -cp bcprov.jar:bcpkix.jar:bcutil.jar:DIR BcEncrypt MODE CERT IN OUT [...]
 * MODE is KEY-CONTENT (e.g. "oaep-gcm"); CERT is a PEM or DER certificate;
 * IN the plaintext entity; OUT the DER CMS.  Several quadruples may follow
 * one another (one JVM start for many files); the report of job N (from 0)
 * is introduced by "job=N" and followed by "key=value" lines (type,
 * keyalg, contentalg, bytes) for the test to check.  Exit status 0 if
 * every job succeeded, 1 otherwise (messages on stderr).
 */
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.spec.MGF1ParameterSpec;

import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthEnvelopedData;
import org.bouncycastle.cms.CMSAuthEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSEnvelopedData;
import org.bouncycastle.cms.CMSEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.RecipientInfoGenerator;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.jcajce.JceCMSContentEncryptorBuilder;
import org.bouncycastle.cms.jcajce.JceKeyAgreeRecipientInfoGenerator;
import org.bouncycastle.cms.jcajce.JceKeyTransRecipientInfoGenerator;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.OutputAEADEncryptor;
import org.bouncycastle.operator.OutputEncryptor;
import org.bouncycastle.operator.jcajce.JcaAlgorithmParametersConverter;

public final class BcEncrypt {
	public static void main(String[] args) throws Exception {
		if (args.length == 0 || args.length % 4 != 0) {
			System.err.println("usage: BcEncrypt MODE CERT IN OUT [...]  (MODE: rsa15|oaep|ecdh - cbc|gcm)");
			System.exit(1);
		}
		Security.addProvider(new BouncyCastleProvider());
		int status = 0;
		for (int i = 0; i < args.length; i += 4) {
			System.out.println("job=" + i / 4);
			try {
				run(args[i], args[i + 1], args[i + 2], args[i + 3]);
			} catch (Exception e) {
				System.out.println("error=" + e);
				System.err.println("BcEncrypt: " + args[i + 3] + ": " + e);
				status = 1;
			}
		}
		System.exit(status);
	}

	/* Reads a PEM or DER certificate (CertificateFactory accepts both). */
	private static X509Certificate readCert(String path) throws Exception {
		byte[] b = Files.readAllBytes(Paths.get(path));
		CertificateFactory cf = CertificateFactory.getInstance("X.509");
		return (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(b));
	}

	private static RecipientInfoGenerator recipient(String key, X509Certificate cert) throws Exception {
		switch (key) {
		case "rsa15":
			return new JceKeyTransRecipientInfoGenerator(cert).setProvider("BC");
		case "oaep": {
			OAEPParameterSpec spec = new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
			    PSource.PSpecified.DEFAULT);
			AlgorithmIdentifier alg = new JcaAlgorithmParametersConverter()
			    .getAlgorithmIdentifier(PKCSObjectIdentifiers.id_RSAES_OAEP, spec);
			return new JceKeyTransRecipientInfoGenerator(cert, alg).setProvider("BC");
		}
		case "ecdh": {
			if (!(cert.getPublicKey() instanceof ECPublicKey))
				throw new IllegalArgumentException("ecdh needs an EC certificate");
			/* An ephemeral key on the recipient's curve. */
			KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", "BC");
			kpg.initialize(((ECPublicKey) cert.getPublicKey()).getParams());
			KeyPair eph = kpg.generateKeyPair();
			return new JceKeyAgreeRecipientInfoGenerator(CMSAlgorithm.ECDH_SHA256KDF, eph.getPrivate(),
			    eph.getPublic(), CMSAlgorithm.AES256_WRAP).addRecipient(cert).setProvider("BC");
		}
		default:
			throw new IllegalArgumentException("unknown key mode " + key);
		}
	}

	private static void run(String mode, String certPath, String in, String out) throws Exception {
		String[] m = mode.split("-", 2);
		if (m.length != 2)
			throw new IllegalArgumentException("MODE is KEY-CONTENT, not " + mode);
		X509Certificate cert = readCert(certPath);
		byte[] plain = Files.readAllBytes(Paths.get(in));
		RecipientInfoGenerator rig = recipient(m[0], cert);
		ContentInfo ci;
		String type, keyalg;
		ASN1ObjectIdentifier contentalg;
		if (m[1].equals("cbc")) {
			CMSEnvelopedDataGenerator gen = new CMSEnvelopedDataGenerator();
			gen.addRecipientInfoGenerator(rig);
			OutputEncryptor enc = new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES256_CBC).setProvider("BC").build();
			CMSEnvelopedData ed = gen.generate(new CMSProcessableByteArray(plain), enc);
			ci = ed.toASN1Structure();
			type = "envelopedData";
			keyalg = ((RecipientInformation) ed.getRecipientInfos().getRecipients().iterator().next())
			    .getKeyEncryptionAlgOID();
			contentalg = ed.getContentEncryptionAlgorithm().getAlgorithm();
		} else if (m[1].equals("gcm")) {
			CMSAuthEnvelopedDataGenerator gen = new CMSAuthEnvelopedDataGenerator();
			gen.addRecipientInfoGenerator(rig);
			OutputEncryptor enc = new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES256_GCM).setProvider("BC").build();
			if (!(enc instanceof OutputAEADEncryptor))
				throw new IllegalStateException("BouncyCastle gave no AEAD encryptor for GCM");
			CMSAuthEnvelopedData ad = gen.generate(new CMSProcessableByteArray(plain), (OutputAEADEncryptor) enc);
			ci = ad.toASN1Structure();
			type = "authEnvelopedData";
			keyalg = ((RecipientInformation) ad.getRecipientInfos().getRecipients().iterator().next())
			    .getKeyEncryptionAlgOID();
			contentalg = enc.getAlgorithmIdentifier().getAlgorithm();
		} else {
			throw new IllegalArgumentException("unknown content mode " + m[1]);
		}
		byte[] der = ci.getEncoded(ASN1Encoding.DER);
		Files.write(Paths.get(out), der);
		System.out.println("type=" + type);
		System.out.println("keyalg=" + keyalg);
		System.out.println("contentalg=" + contentalg.getId());
		System.out.println("bytes=" + der.length);
	}
}
