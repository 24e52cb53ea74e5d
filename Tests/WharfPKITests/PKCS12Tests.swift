import Foundation
import Testing
import WharfTestSupport
@testable import WharfPKI

/// The keystores Wharf writes, opened by OpenSSL and, where Java is installed, by keytool.
@Suite struct PKCS12Tests {
    let directory: TemporaryDirectory
    let authority: CertificateAuthority
    let client: KeyedCertificate
    let keystore: String
    let truststore: String
    static let password = "correct horse"

    init() throws {
        directory = try TemporaryDirectory("wharf-p12")
        authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        client = try authority.issueClientCertificate(commonName: "acme", organization: "Acme", keyType: .p256)
        keystore = directory.file("acme.p12")
        truststore = directory.file("truststore.p12")
        try Data(PKCS12.keystore(client, chain: [authority.certificate], alias: "acme", password: Self.password)).write(to: URL(fileURLWithPath: keystore))
        try Data(PKCS12.truststore([authority.certificate], alias: "wharf-ca", password: Self.password)).write(to: URL(fileURLWithPath: truststore))
    }

    @Test func opensslOpensTheKeystoreWithItsKeyAndChain() throws {
        let result = try Command.run("openssl", ["pkcs12", "-in", keystore, "-passin", "pass:\(Self.password)", "-nodes", "-info"])
        #expect(result.succeeded, "\(result.stderr)")
        #expect(result.stdout.contains("-----BEGIN PRIVATE KEY-----"))
        #expect(result.stdout.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3)
        #expect(result.stderr.contains("PBES2, PBKDF2, AES-256-CBC"))
        #expect(result.stderr.contains("MAC: sha256"))
    }

    @Test func theWrongPasswordOpensNothing() throws {
        #expect(try !Command.run("openssl", ["pkcs12", "-in", keystore, "-passin", "pass:wrong", "-nodes"]).succeeded)
        #expect(try !Command.run("openssl", ["pkcs12", "-in", truststore, "-passin", "pass:wrong", "-nokeys"]).succeeded)
    }

    @Test(.enabled(if: Command.exists("keytool"), "Java's keytool is not installed"))
    func keytoolListsTheKeyEntryAndTheTrustedCA() throws {
        let keys = try Command.run("keytool", ["-list", "-storetype", "PKCS12", "-keystore", keystore, "-storepass", Self.password])
        #expect(keys.succeeded, "\(keys.stdout)\(keys.stderr)")
        #expect(keys.stdout.contains("acme,") && keys.stdout.contains("PrivateKeyEntry"))
        #expect(keys.stdout.contains(client.certificate.fingerprint.colonSeparated))

        let trust = try Command.run("keytool", ["-list", "-storetype", "PKCS12", "-keystore", truststore, "-storepass", Self.password])
        #expect(trust.succeeded, "\(trust.stdout)\(trust.stderr)")
        #expect(trust.stdout.contains("wharf-ca,") && trust.stdout.contains("trustedCertEntry"))
        #expect(trust.stdout.contains(authority.certificate.fingerprint.colonSeparated))
    }
}
