import Foundation
import WharfCore
import X509

/// What a partner needs to connect: its client certificate and key, the CA (or, while
/// they overlap, the CAs) that authenticate Wharf, the same as PKCS#12 keystore and
/// truststore for Java, and a README with the exact commands.
/// A certificate issued for the partner's own request (CSR) comes without a key and
/// without a keystore: the partner holds the key and builds the keystore.
///
/// A bundle is written to a staging directory first (`stage`) and moved into place by
/// `install`, so a directory named after a partner never holds half a bundle.
public struct PartnerBundle: Sendable {
    public let partner: PartnerName
    public let certificate: Certificate
    /// The private key, when Wharf generated it; nil for a certificate issued for a CSR.
    public let privateKey: Certificate.PrivateKey?
    /// The CA that signed `certificate` (the partner CA): the keystore's chain. The partner
    /// is not asked to trust it.
    public let issuer: Certificate
    /// What the partner trusts to authenticate Wharf: `ca.crt` and the truststore.
    public let trust: [Certificate]
    public let password: String
    /// Whether `password` was generated, and so must be written beside the keystore.
    public let passwordGenerated: Bool
    /// The base URL partners push to, for the README's examples.
    public let gatewayURL: String
    /// Whether the partner fetches its files from its outbox (`--delivery pull`): the
    /// README then shows how.
    public let pulls: Bool

    public init(
        partner: PartnerName, certificate: Certificate, privateKey: Certificate.PrivateKey?, issuer: Certificate,
        trust: [Certificate], password: String, passwordGenerated: Bool, gatewayURL: String, pulls: Bool = false
    ) {
        self.pulls = pulls
        self.partner = partner
        self.certificate = certificate
        self.privateKey = privateKey
        self.issuer = issuer
        self.trust = trust
        self.password = password
        self.passwordGenerated = passwordGenerated
        self.gatewayURL = gatewayURL
    }

    public var certificateFile: String { "\(partner).crt" }
    public var keyFile: String { "\(partner).key" }
    public var keystoreFile: String { "\(partner).p12" }
    public var passwordFile: String { "\(partner).p12.password" }
    public static let caFile = "ca.crt"
    public static let truststoreFile = "truststore.p12"

    /// A staged bundle, not yet visible under its final name.
    public struct Staged: Sendable {
        public let stagingPath: String
        public let destination: String

        /// Moves the bundle into place, replacing an earlier bundle at the destination.
        public func install() throws(WharfError) {
            let previous = "\(destination).previous-\(getpid())"
            let hadPrevious = FileManager.default.fileExists(atPath: destination)
            if hadPrevious, rename(destination, previous) != 0 {
                throw WharfError(.fileSystem, "cannot move the earlier bundle \(destination) aside: \(String(cString: strerror(errno)))")
            }
            guard rename(stagingPath, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                if hadPrevious { rename(previous, destination) }
                throw WharfError(.fileSystem, "cannot move the bundle into \(destination): \(reason)")
            }
            if hadPrevious { try? FileManager.default.removeItem(atPath: previous) }
            try AtomicFile.syncDirectory((destination as NSString).deletingLastPathComponent)
        }

        /// Removes the staged files.
        public func discard() {
            try? FileManager.default.removeItem(atPath: stagingPath)
        }
    }

    /// Writes every file of the bundle into a staging directory beside `destination`.
    public func stage(for destination: String) throws(WharfError) -> Staged {
        let parent = (destination as NSString).deletingLastPathComponent
        let staging = "\(parent)/.\((destination as NSString).lastPathComponent).staging-\(getpid())"
        let staged = Staged(stagingPath: staging, destination: destination)
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WharfError(.fileSystem, "cannot create \(staging): \(error.localizedDescription)")
        }
        do throws(WharfError) {
            let truststore = try PKCS12.truststore(trust, alias: "wharf-ca", password: password)
            try AtomicFile.write(certificate.pemText, to: "\(staging)/\(certificateFile)")
            if let privateKey {
                let identity = KeyedCertificate(certificate: certificate, privateKey: privateKey)
                let keystore = try PKCS12.keystore(identity, chain: [issuer], alias: partner.rawValue, password: password)
                try AtomicFile.write(identity.privateKeyPEM, to: "\(staging)/\(keyFile)", mode: 0o600)
                try AtomicFile.write(keystore, to: "\(staging)/\(keystoreFile)", mode: 0o600)
            }
            try AtomicFile.write(trust.map(\.pemText).joined(), to: "\(staging)/\(Self.caFile)")
            try AtomicFile.write(truststore, to: "\(staging)/\(Self.truststoreFile)")
            if passwordGenerated {
                try AtomicFile.write(password + "\n", to: "\(staging)/\(passwordFile)", mode: 0o600)
            }
            try AtomicFile.write(readme, to: "\(staging)/README.md")
            chmod(staging, 0o755)
        } catch {
            staged.discard()
            throw error
        }
        return staged
    }

    /// A password of 24 letters and digits from the system's secure random source.
    public static func generatePassword() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Whether the CA that signed the partner's certificate is among those it trusts (a
    /// home with one CA, or two that overlap).
    private var trustsIssuer: Bool {
        trust.contains { $0.fingerprint == issuer.fingerprint }
    }

    var trustDescription: String {
        if trust.count > 1 {
            "the CAs that authenticate Wharf's server and client certificates while Wharf moves to a new one: trust both until Wharf's operator says the old one is retired"
        } else if trustsIssuer {
            "Wharf's CA: it signs Wharf's server certificate and this certificate"
        } else {
            "Wharf's identity CA: it signs Wharf's server certificate and the client certificate Wharf delivers with"
        }
    }

    var trustAdvice: String {
        trustsIssuer ? "" : """
            Trust `\(Self.caFile)` to authenticate Wharf, and nothing else Wharf sends you: the CA
            that signed your own certificate also signs other partners' certificates, so a
            server of yours that trusted it would accept them too.


            """
    }

    /// How a pull partner lists, fetches (resuming a broken download) and acknowledges its files.
    /// How to send a large file so that a broken upload resumes, with curl alone.
    var resumableSection: String {
        let tls = "--cert \(certificateFile) --key \(keyFile) --cacert \(Self.caFile)"
        return """

            ## Large files: resume a broken upload

            Wharf speaks the IETF's resumable uploads draft
            (draft-ietf-httpbis-resumable-upload-15): an upload created with `Upload-Complete`
            gets an address under `/uploads/`, and after a break you ask it how much arrived
            and send only the rest. With curl (any client of the draft works too):

            ```sh
            file=big.bin; size=$(stat -c %s "$file")
            # 1. Create the upload with an empty first part; Wharf answers 201 and its Location.
            location=$(curl -sS \(tls) -X PUT --data-binary '' -H 'Upload-Complete: ?0' \\
                -H "Upload-Length: $size" -D - -o /dev/null \(gatewayURL)/inbox/"$file" | tr -d '\\r' | sed -n 's/^location: //Ip' | head -n 1)
            # 2. How much does Wharf hold? (At the start, and after each break.)
            offset=$(curl -sS \(tls) -I \(gatewayURL)"$location" | tr -d '\\r' | sed -n 's/^upload-offset: //Ip')
            # 3. Send the rest from there; after a break, repeat 2 and 3. The last answer is 201 and the receipt.
            tail -c +$((offset + 1)) "$file" | curl -sS \(tls) -T - -X PATCH -H 'Content-Type: application/partial-upload' \\
                -H "Upload-Offset: $offset" -H 'Upload-Complete: ?1' \(gatewayURL)"$location"
            ```

            What Wharf reports as the offset is on its disk; the upload waits 24 hours for the
            rest, and nothing of it is received before the last part.

            """
    }

    var pullSection: String {
        guard pulls else { return "" }
        let tls = "--cert \(certificateFile) --key \(keyFile) --cacert \(Self.caFile)"
        return """

            ## Fetch your files

            Wharf keeps the files it has for you in your outbox until you acknowledge them.
            List them, oldest first (`?limit=100&after=ID` pages on):

            ```sh
            curl \(tls) \(gatewayURL)/outbox
            ```

            Fetch one by its `id`; `-C -` resumes a broken download where it stopped (the
            `ETag` is the file's SHA-256). Compare the file's SHA-256 with the listing's:

            ```sh
            curl \(tls) -C - -o FILENAME \(gatewayURL)/outbox/ID
            sha256sum FILENAME
            ```

            Then acknowledge it, which delivers it (acknowledging twice is harmless):

            ```sh
            curl \(tls) -X DELETE \(gatewayURL)/outbox/ID
            ```

            """
    }

    var readme: String {
        let ownKey = privateKey == nil
        let stores = ownKey ? "truststore" : "keystore and truststore"
        let passwordLine = passwordGenerated
            ? "The \(stores) password is in `\(passwordFile)`."
            : "The \(stores) password is the one given to `wharf partner issue`."
        let keyRows = ownKey
            ? """
            | `\(keyFile)` (yours) | the private key of your certificate request: Wharf never saw it; keep it secret |
            """
            : """
            | `\(keyFile)` | its private key: keep it secret |
            | `\(keystoreFile)` | PKCS#12 keystore: the key, the certificate and the CA that signed it, alias `\(partner)` |
            """
        let keystoreLine = ownKey
            ? """
            Build the keystore from your own key first:
            `openssl pkcs12 -export -in \(certificateFile) -inkey \(keyFile) -name \(partner) -out \(keystoreFile)`.


            """
            : ""
        return """
            # Wharf bundle for \(partner)

            Issued by Wharf's partner CA on \(certificate.notValidBefore.formatted(.iso8601)); \
            valid until \(certificate.notValidAfter.formatted(.iso8601)).

            | file | what |
            |---|---|
            | `\(certificateFile)` | your client certificate (subject `\(certificate.subject)`) |
            \(keyRows)
            | `\(Self.caFile)` | \(trustDescription) |
            | `\(Self.truststoreFile)` | PKCS#12 truststore: the same, alias `wharf-ca`\(trust.count > 1 ? " and `wharf-ca-2`" : "") |

            \(trustAdvice)\(passwordLine)

            Certificate SHA-256 fingerprint: `\(certificate.fingerprint.hex)`
            (`openssl x509 -in \(certificateFile) -outform DER | sha256sum` prints it the same way).

            ## Push a file with curl

            ```sh
            curl --cert \(certificateFile) --key \(keyFile) --cacert \(Self.caFile) \\
                 --upload-file invoice.xml \(gatewayURL)/inbox/invoice.xml
            ```

            Wharf answers `201` with a JSON receipt (id, size, SHA-256) once the file is on disk.
            \(resumableSection)\(pullSection)
            ## Java and Spring Boot

            \(keystoreLine)Sending to Wharf (your application is the client), as a Spring Boot SSL bundle:

            ```properties
            spring.ssl.bundle.jks.wharf.key.alias=\(partner)
            spring.ssl.bundle.jks.wharf.keystore.location=file:\(keystoreFile)
            spring.ssl.bundle.jks.wharf.keystore.password=${WHARF_P12_PASSWORD}
            spring.ssl.bundle.jks.wharf.keystore.type=PKCS12
            spring.ssl.bundle.jks.wharf.truststore.location=file:\(Self.truststoreFile)
            spring.ssl.bundle.jks.wharf.truststore.password=${WHARF_P12_PASSWORD}
            spring.ssl.bundle.jks.wharf.truststore.type=PKCS12
            ```

            or, for any JVM: `-Djavax.net.ssl.keyStore=\(keystoreFile) -Djavax.net.ssl.keyStoreType=PKCS12 \
            -Djavax.net.ssl.keyStorePassword=… -Djavax.net.ssl.trustStore=\(Self.truststoreFile) \
            -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword=…`

            Receiving from Wharf (your HTTPS server accepts Wharf's deliveries): Wharf's client
            certificate is signed by the CA in `\(Self.caFile)`, so require client certificates
            and trust that truststore only:

            ```properties
            server.ssl.client-auth=need
            server.ssl.trust-store=file:\(Self.truststoreFile)
            server.ssl.trust-store-type=PKCS12
            server.ssl.trust-store-password=${WHARF_P12_PASSWORD}
            ```

            Check a keystore with `keytool -list -storetype PKCS12 -keystore \(keystoreFile)`.

            """
    }
}
