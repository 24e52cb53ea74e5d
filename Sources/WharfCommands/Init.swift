import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import WharfStore

extension KeyType: ExpressibleByArgument {}

/// `wharf init`: a new home with its registry and its own CA.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a Wharf home: the registry, Wharf's two CAs, a server and a client certificate.",
        discussion: """
            The partner CA signs the client certificates Wharf issues to partners; the identity \
            CA signs Wharf's server and client certificates, and is the only one partners are \
            told to trust. The server certificate covers localhost, 127.0.0.1, ::1, this host's \
            name and every --server-name; give the names partners will connect to. On a home \
            that is already initialised, init refuses and changes nothing.
            """
    )

    @OptionGroup var home: HomeOptions

    @Option(name: .customLong("server-name"), help: ArgumentHelp("A DNS name or IP address the server certificate must cover (repeatable).", valueName: "name"))
    var serverNames: [String] = []

    @Option(help: "The kind of keys to generate: p256 (default) or rsa2048.")
    var keyType: KeyType = .p256

    @Option(help: ArgumentHelp("Your organisation's name, for the subjects of the CA and of Wharf's own certificates (default Wharf).", valueName: "name"))
    var organization: String = "Wharf"

    func run() throws {
        let home = home.resolved
        let pki = home.pki
        for existing in [home.registryPath, pki.path] where FileManager.default.fileExists(atPath: existing) {
            throw WharfError(
                .alreadyInitialized, "\(home.path) is already a Wharf home (\(existing) exists); nothing was changed",
                fix: "use another --home, or `wharf ca reissue-server` to renew the server certificate"
            )
        }
        guard !organization.trimmingCharacters(in: .whitespaces).isEmpty, organization.utf8.count <= 64,
              EscapedText.isPrintable(organization)
        else {
            throw WharfError.invalid(
                "the organisation name must be printable text on one line of 1 to 64 bytes",
                fix: "give --organization a name such as \"Acme Logistics\""
            )
        }
        let names = HostNames.serverCertificateNames(extra: serverNames)

        let authority = try CertificateAuthority.create(
            commonName: CertificateAuthority.uniqueCommonName("partner"), organization: organization, keyType: keyType
        )
        let identity = try CertificateAuthority.create(
            commonName: CertificateAuthority.uniqueCommonName("identity"), organization: organization, keyType: keyType
        )
        let server = try identity.issueServerCertificate(hostNames: names, keyType: keyType)
        let client = try identity.issueClientCertificate(commonName: "wharf \(names[0])", organization: organization, keyType: keyType, days: 365)

        do {
            try FileManager.default.createDirectory(atPath: home.path, withIntermediateDirectories: true)
        } catch {
            throw WharfError(.fileSystem, "cannot create \(home.path): \(error.localizedDescription)")
        }
        try pki.create(authority: authority, identity: identity, server: server, client: client)
        do {
            _ = try Registry.create(at: home.registryPath)
            for directory in [home.partnersDirectory, home.spoolDirectory] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let settings = "\(home.path)/\(ConfigurationFile.name)"
            if !FileManager.default.fileExists(atPath: settings) {
                try AtomicFile.write(ConfigurationFile.template, to: settings, mode: 0o640)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: pki.path)
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: home.registryPath + suffix) }
            throw error
        }

        Console.print("Initialised Wharf home \(home.path)")
        Console.print("  partner CA   \(EscapedText.terminal(authority.certificate.subject.description))  sha256 \(authority.certificate.fingerprint.hex)")
        Console.print("  identity CA  \(EscapedText.terminal(identity.certificate.subject.description))  sha256 \(identity.certificate.fingerprint.hex)")
        Console.print("  server       covers \(names.joined(separator: ", "))")
        Console.print("Partners trust the identity CA only (\(pki.identityCertificatePath); the ca.crt of every bundle).")
        Console.print("Next: wharf partner add NAME, then wharf partner issue NAME.")
    }
}
