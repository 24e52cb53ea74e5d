import ArgumentParser
import Foundation
import WharfCore
import WharfPKI

/// `wharf partner issue`.
struct PartnerIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a client certificate from Wharf's CA and write the partner's bundle.",
        discussion: """
            The certificate (clientAuth, CN=NAME, O=display name) is bound to the partner by its \
            fingerprint for its validity, beside any earlier one, so a partner can switch \
            certificates without an outage. The bundle (PEM files, a PKCS#12 keystore and \
            truststore, and a README with the curl and Spring Boot settings) goes to \
            partners/NAME/ (replacing an earlier bundle there) or to --out.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @Option(help: ArgumentHelp("Write the bundle to this new directory instead of partners/NAME/.", valueName: "dir"))
    var out: String?

    @Option(help: "Validity in days.")
    var days: Int = 365

    @Option(help: ArgumentHelp("Protect the PKCS#12 files with the password in this file (first line). Without it one is generated and written beside the keystore.", valueName: "file"))
    var p12PasswordFile: String?

    func run() throws {
        let name = try PartnerName(name)
        let home = home.resolved
        let password = try p12PasswordFile.map { path throws(WharfError) in try Self.readPassword(path) }
        if let out, let contents = try? FileManager.default.contentsOfDirectory(atPath: out), !contents.isEmpty {
            throw WharfError.invalid("\(out) already exists and is not empty", fix: "give --out a new or empty directory")
        }
        let registry = try home.openRegistry()
        guard let partner = try registry.partner(named: name) else {
            throw WharfError(.notFound, "no partner named '\(name)'", fix: "register it first with `wharf partner add \(name)`")
        }
        let authority = try home.pki.loadAuthority()
        let server = try home.pki.loadServer()

        let issued = try authority.issueClientCertificate(
            commonName: name.rawValue, organization: partner.displayName,
            keyType: KeyType(of: authority.keyed.privateKey), days: days
        )
        let gatewayHost = server.certificate.alternativeNames?.first ?? "localhost"
        let bundle = PartnerBundle(
            partner: name, identity: issued, authority: authority.certificate,
            password: password ?? PartnerBundle.generatePassword(), passwordGenerated: password == nil,
            gatewayURL: "https://\(gatewayHost.contains(":") ? "[\(gatewayHost)]" : gatewayHost):8443"
        )
        let destination = out ?? home.bundleDirectory(for: name)
        let staged = try bundle.stage(for: destination)

        let identity = try InboundIdentity(
            .fingerprint(issued.certificate.fingerprint),
            notBefore: issued.certificate.notValidBefore, notAfter: issued.certificate.notValidAfter
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

        OperatorAudit.record(registry, "partner issue", partner: name.rawValue, "issued certificate sha256 \(issued.certificate.fingerprint.hex) until \(issued.certificate.notValidAfter.utcTimestamp())")
        Console.print("Issued a client certificate for \(name), valid until \(issued.certificate.notValidAfter.formatted(.iso8601))")
        Console.print("  subject  \(issued.certificate.subject)")
        Console.print("  sha256   \(issued.certificate.fingerprint.hex)")
        Console.print("Bundle written to \(destination)/ (see its README.md). Push a file with:")
        Console.print("  curl --cert \(destination)/\(bundle.certificateFile) --key \(destination)/\(bundle.keyFile) --cacert \(destination)/\(PartnerBundle.caFile) --upload-file FILE \(bundle.gatewayURL)/inbox/FILE")
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
