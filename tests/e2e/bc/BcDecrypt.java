/*
 * BcDecrypt: an independent S/MIME decryptor for the encryption engine's
 * interop tests, built on BouncyCastle (Debian libbcpkix-java and
 * libbcprov-java).  It opens a PKCS#12 identity, finds the RecipientInfo
 * for its certificate in a DER CMS EnvelopedData or AuthEnvelopedData,
 * decrypts with JceKeyTransEnvelopedRecipient (RSA v1.5 / OAEP) or
 * JceKeyAgreeEnvelopedRecipient (ECDH), writes the plaintext and prints
 * the algorithm OIDs it met, one "key=value" per line, for the test to
 * check.
 *
 * Usage: java -cp bcprov.jar:bcpkix.jar:bcutil.jar:DIR BcDecrypt P12 PASSWORD IN.der OUT [...]
 * Several quadruples may follow one another (one JVM start for many
 * files); the report of job N (from 0) is introduced by "job=N".  Exit
 * status 0 if every job succeeded, 1 otherwise (messages on stderr).
 */
import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Security;
import java.security.cert.X509Certificate;
import java.util.Collections;

import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSAuthEnvelopedData;
import org.bouncycastle.cms.CMSEnvelopedData;
import org.bouncycastle.cms.KeyAgreeRecipientInformation;
import org.bouncycastle.cms.KeyTransRecipientInformation;
import org.bouncycastle.cms.Recipient;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.RecipientInformationStore;
import org.bouncycastle.cms.jcajce.JceKeyAgreeEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient;
import org.bouncycastle.jce.provider.BouncyCastleProvider;

public final class BcDecrypt {
	public static void main(String[] args) throws Exception {
		if (args.length == 0 || args.length % 4 != 0) {
			System.err.println("usage: BcDecrypt P12 PASSWORD IN.der OUT [...]");
			System.exit(1);
		}
		Security.addProvider(new BouncyCastleProvider());
		int status = 0;
		for (int i = 0; i < args.length; i += 4) {
			System.out.println("job=" + i / 4);
			try {
				run(args[i], args[i + 1].toCharArray(), args[i + 2], args[i + 3]);
			} catch (Exception e) {
				System.out.println("error=" + e);
				System.err.println("BcDecrypt: " + args[i + 2] + ": " + e);
				status = 1;
			}
		}
		System.exit(status);
	}

	@SuppressWarnings("unchecked")
	private static void run(String p12, char[] pass, String in, String out) throws Exception {
		KeyStore ks = KeyStore.getInstance("PKCS12");
		try (FileInputStream f = new FileInputStream(p12)) {
			ks.load(f, pass);
		}
		PrivateKey key = null;
		X509Certificate cert = null;
		for (String alias : Collections.list(ks.aliases())) {
			if (ks.isKeyEntry(alias)) {
				key = (PrivateKey) ks.getKey(alias, pass);
				cert = (X509Certificate) ks.getCertificate(alias);
				break;
			}
		}
		if (key == null || cert == null)
			throw new IllegalArgumentException("no key entry in " + p12);
		X509CertificateHolder holder = new X509CertificateHolder(cert.getEncoded());

		byte[] der = Files.readAllBytes(Paths.get(in));
		ContentInfo ci = ContentInfo.getInstance(ASN1Primitive.fromByteArray(der));
		RecipientInformationStore store;
		String type, contentAlg;
		if (ci.getContentType().equals(CMSObjectIdentifiers.authEnvelopedData)) {
			CMSAuthEnvelopedData ad = new CMSAuthEnvelopedData(der);
			store = ad.getRecipientInfos();
			type = "authEnvelopedData";
			contentAlg = org.bouncycastle.asn1.cms.AuthEnvelopedData.getInstance(ci.getContent())
			    .getAuthEncryptedContentInfo().getContentEncryptionAlgorithm().getAlgorithm().getId();
		} else if (ci.getContentType().equals(CMSObjectIdentifiers.envelopedData)) {
			CMSEnvelopedData ed = new CMSEnvelopedData(der);
			store = ed.getRecipientInfos();
			type = "envelopedData";
			contentAlg = ed.getEncryptionAlgOID();
		} else {
			throw new IllegalArgumentException("not enveloped: " + ci.getContentType());
		}

		RecipientInformation ri = null;
		for (Object o : store.getRecipients()) {
			RecipientInformation r = (RecipientInformation) o; {
			if (r.getRID().match(holder)) {
				ri = r;
				break;
			}
		}
		}
		if (ri == null)
			throw new IllegalArgumentException("no RecipientInfo for " + cert.getSubjectX500Principal()
			    + " among " + store.size());
		Recipient rec;
		String kind;
		if (ri instanceof KeyTransRecipientInformation) {
			rec = new JceKeyTransEnvelopedRecipient(key).setProvider("BC");
			kind = "ktri";
		} else if (ri instanceof KeyAgreeRecipientInformation) {
			rec = new JceKeyAgreeEnvelopedRecipient(key).setProvider("BC");
			kind = "kari";
		} else {
			throw new IllegalArgumentException("unsupported RecipientInfo " + ri.getClass());
		}
		byte[] plain = ri.getContent(rec);
		Files.write(Paths.get(out), plain);
		System.out.println("type=" + type);
		System.out.println("recipients=" + store.size());
		System.out.println("recipientinfo=" + kind);
		System.out.println("keyalg=" + ri.getKeyEncryptionAlgOID());
		System.out.println("contentalg=" + contentAlg);
		System.out.println("bytes=" + plain.length);
	}
}
