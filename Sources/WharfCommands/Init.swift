import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import WharfPostgres
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

            With --database, the registry is that PostgreSQL database (it must exist and be \
            empty), recorded in the home's wharf.yml: every node that shares the home uses it. \
            Give the password with --database-password-file or PGPASSWORD, not in the URL, \
            which `ps` shows.
            """
    )

    @OptionGroup var home: HomeOptions

    @Option(name: .customLong("server-name"), help: ArgumentHelp("A DNS name or IP address the server certificate must cover (repeatable).", valueName: "name"))
    var serverNames: [String] = []

    @Option(help: "The kind of keys to generate: p256 (default) or rsa2048.")
    var keyType: KeyType = .p256

    @Option(help: ArgumentHelp(
        "A PostgreSQL database for the registry, shared by several nodes: postgresql://USER@HOST:PORT/DB[?sslmode=disable|require|verify-full].",
        valueName: "url"
    ))
    var database: String?

    @Option(help: ArgumentHelp("A file whose first line is the database's password (recorded in wharf.yml, not the password).", valueName: "file"))
    var databasePasswordFile: String?

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
        if databasePasswordFile != nil, database == nil {
            throw WharfError.invalid("--database-password-file needs --database", fix: "give the database's URL with --database")
        }
        // Checked, and the schema applied, before anything is written in the home.
        let shared = try database.map { url throws(WharfError) in
            let location = try PostgresLocation(url: url, passwordFile: databasePasswordFile)
            let store = try PostgresStore.open(location, node: NodeName.generated().rawValue)
            defer { store.close() }
            guard try store.partners().isEmpty, try store.transfers(limit: 1).isEmpty, try store.receipts(partner: nil, limit: 1).isEmpty else {
                throw WharfError(
                    .alreadyInitialized, "the database \(location) already holds a Wharf registry; nothing was changed",
                    fix: "give an empty database, or point every node's --home at the home that uses this one"
                )
            }
            return location
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
            if shared == nil { _ = try Registry.create(at: home.registryPath) }
            for directory in [home.partnersDirectory, home.spoolDirectory] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let settings = "\(home.path)/\(ConfigurationFile.name)"
            if !FileManager.default.fileExists(atPath: settings) {
                try AtomicFile.write(ConfigurationFile.template(database: database, passwordFile: databasePasswordFile), to: settings, mode: 0o640)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: pki.path)
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: home.registryPath + suffix) }
            throw error
        }

        Console.print("Initialised Wharf home \(home.path)")
        if let shared { Console.print("  registry     \(shared) (in \(ConfigurationFile.name): database-url)") }
        Console.print("  partner CA   \(EscapedText.terminal(authority.certificate.subject.description))  sha256 \(authority.certificate.fingerprint.hex)")
        Console.print("  identity CA  \(EscapedText.terminal(identity.certificate.subject.description))  sha256 \(identity.certificate.fingerprint.hex)")
        Console.print("  server       covers \(names.joined(separator: ", "))")
        Console.print("Partners trust the identity CA only (\(pki.identityCertificatePath); the ca.crt of every bundle).")
        Console.print("Next: wharf partner add NAME, then wharf partner issue NAME.")
    }
}
