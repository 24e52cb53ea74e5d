import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import X509

/// `wharf partner issue`.
struct PartnerIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a client certificate from Wharf's partner CA and write the partner's bundle.",
        discussion: """
            The certificate (clientAuth, CN=NAME, O=display name) is bound to the partner by its \
            fingerprint for its validity, beside any earlier one, so a partner can switch \
            certificates without an outage. The bundle (PEM files, a PKCS#12 keystore and \
            truststore, and a README with the curl and Spring Boot settings) goes to \
            partners/NAME/ (replacing an earlier bundle there) or to --out. With --csr Wharf \
            signs the partner's own request instead of generating a key: the signature must \
            verify and the key be P-256, P-384 or RSA of 2048 bits or more; the subject and \
            usage are Wharf's, whatever the request asks for, and the bundle has no key and no \
            keystore.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @Option(help: ArgumentHelp("Write the bundle to this new directory instead of partners/NAME/.", valueName: "dir"))
    var out: String?

    @Option(help: "Validity in days.")
    var days: Int = 365

    @Option(help: ArgumentHelp("Sign this certificate signing request (PEM) instead of generating a key.", valueName: "file"))
    var csr: String?

    @Option(help: ArgumentHelp("Put this URL of Wharf's CRL (the admin listener's /crl, or where pki/crl.pem is published) in the certificate as its CRL distribution point.", valueName: "url"))
    var crlURL: String?

    @Option(help: ArgumentHelp("Protect the PKCS#12 files with the password in this file (first line). Without it one is generated and written beside the keystore.", valueName: "file"))
    var p12PasswordFile: String?

    func run() throws {
        let name = try PartnerName(name)
        let home = home.resolved
        let password = try p12PasswordFile.map { path throws(WharfError) in try Self.readPassword(path) }
        if let out, let contents = try? FileManager.default.contentsOfDirectory(atPath: out), !contents.isEmpty {
            throw WharfError.invalid("\(out) already exists and is not empty", fix: "give --out a new or empty directory")
        }
        let revocationListURL = try crlURL.map { text throws(WharfError) in try CertificateAuthority.checkRevocationListURL(text) }
        let request = try csr.map { path throws(WharfError) in try CertificateRequest(pem: try PEMFile.read(path), source: path) }
        let registry = try home.openStore()
        guard let partner = try registry.partner(named: name) else {
            throw WharfError(.notFound, "no partner named '\(name)'", fix: "register it first with `wharf partner add \(name)`")
        }
        let authority = try home.pki.loadAuthority()
        let server = try home.pki.loadServer()

        let issued: Certificate
        let privateKey: Certificate.PrivateKey?
        if let request {
            issued = try authority.issueClientCertificate(
                commonName: name.rawValue, organization: partner.displayName, publicKey: request.publicKey, days: days,
                revocationListURL: revocationListURL
            )
            privateKey = nil
        } else {
            let keyed = try authority.issueClientCertificate(
                commonName: name.rawValue, organization: partner.displayName,
                keyType: KeyType(of: authority.keyed.privateKey), days: days, revocationListURL: revocationListURL
            )
            (issued, privateKey) = (keyed.certificate, keyed.privateKey)
        }
        let gatewayHost = server.certificate.alternativeNames?.first ?? "localhost"
        let bundle = PartnerBundle(
            partner: name, certificate: issued, privateKey: privateKey, issuer: authority.certificate, trust: try home.pki.partnerTrust(),
            password: password ?? PartnerBundle.generatePassword(), passwordGenerated: password == nil,
            gatewayURL: "https://\(gatewayHost.contains(":") ? "[\(gatewayHost)]" : gatewayHost):8443",
            pulls: partner.outbound.delivery == .pull
        )
        // Known by serial from now on, so that revoking it by fingerprint lists it in the CRL.
        try registry.recordIssued(
            serial: Hex.encode(issued.serialNumber.bytes), fingerprint: issued.fingerprint, partner: name, notAfter: issued.notValidAfter
        )
        let destination = out ?? home.bundleDirectory(for: name)
        let staged = try bundle.stage(for: destination)

        let identity = try InboundIdentity(
            .fingerprint(issued.fingerprint),
            notBefore: issued.notValidBefore, notAfter: issued.notValidAfter
        )
        do throws(WharfError) {
            try CommitThenInstall.run(
                commit: { () throws(WharfError) in
                    try registry.update(name) { partner throws(WharfError) in partner.identities.append(identity) }
                },
                install: { _ in try staged.install() },
                withdraw: { _ in
                    try registry.update(name) { partner throws(WharfError) in partner.identities.removeAll { $0 == identity } }
                }
            )
        } catch {
            staged.discard()
            throw error
        }

        let source = request.map { "for the partner's \($0.keyDescription) request" } ?? "with a new key"
        OperatorAudit.record(registry, "partner issue", partner: name.rawValue, "issued certificate sha256 \(issued.fingerprint.hex) until \(issued.notValidAfter.utcTimestamp()) \(source)")
        Console.print("Issued a client certificate for \(name) \(source), valid until \(issued.notValidAfter.formatted(.iso8601))")
        Console.print("  subject  \(EscapedText.terminal(issued.subject.description))")
        if let request, request.requestedSubject != issued.subject {
            Console.print("           (the request asked for \(EscapedText.terminal(request.requestedSubject.description)); Wharf sets the subject)")
        }
        Console.print("  sha256   \(issued.fingerprint.hex)")
        Console.print("Bundle written to \(destination)/ (see its README.md). Push a file with:")
        let keyArgument = request == nil ? "\(destination)/\(bundle.keyFile)" : "YOUR_KEY"
        Console.print("  curl --cert \(destination)/\(bundle.certificateFile) --key \(keyArgument) --cacert \(destination)/\(PartnerBundle.caFile) --upload-file FILE \(bundle.gatewayURL)/inbox/FILE")
    }

    static func readPassword(_ path: String) throws(WharfError) -> String {
        let text = try PEMFile.read(path)
        let password = String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        guard password.count >= 6 else {
            throw WharfError.invalid("the password in \(path) is shorter than 6 characters", fix: "Java's keytool needs at least 6; use a longer one")
        }
        return password
    }
}
