import Foundation
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfPostgres
import WharfStore

/// The directory that holds one Wharf installation: the registry, `pki/`, `partners/` and
/// `spool/`. `Gateway` builds a running gateway from it.
public struct WharfHome: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var registryPath: String { "\(path)/\(Registry.fileName)" }
    public var pki: PKIDirectory { PKIDirectory(path: "\(path)/pki") }
    public var partnersDirectory: String { "\(path)/partners" }
    public var spoolDirectory: String { "\(path)/spool" }
    /// The file `wharf serve` and `wharf deliver` lock while they run (see `HomeLock`).
    public var lockPath: String { "\(path)/wharf.lock" }
    /// The lock of one node of a home several nodes share.
    func lockPath(node: NodeName) -> String { "\(path)/wharf.\(node).lock" }

    func bundleDirectory(for partner: PartnerName) -> String { "\(partnersDirectory)/\(partner)" }

    /// The embedded registry of an initialised home (SQLite): what `backup` and `db copy`
    /// read. Everything else opens the home's store (`openStore`), whichever it is.
    public func openRegistry() throws(WharfError) -> Registry {
        try Registry.open(at: registryPath)
    }

    /// The store of an initialised home, as its settings name it (see `database`).
    public func openStore(environment: [String: String] = ProcessInfo.processInfo.environment) throws(WharfError) -> any HomeStore {
        let settings = try settings(environment: environment)
        return try open(database(settings), node: settings.nodeName, lease: settings.double("claim-lease")).store
    }

    /// A home's store as `open` gives it to a gateway.
    struct OpenedStore {
        var store: any HomeStore
        /// What a node of several does through the store; `nil` on SQLite.
        var nodes: (any NodeRegistry)?
        /// The store's connections as a service of the gateway, which ends them when it
        /// stops; `nil` on SQLite, which has nothing to run.
        var connections: (any Service)?
    }

    /// The settings of a command that gives no flags: the home's wharf.yml, overridden by
    /// the environment.
    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws(WharfError) -> EffectiveSettings {
        try EffectiveSettings.resolve(for: .gateway, flags: [:], environment: environment, file: ConfigurationFile.load(home: self))
    }

    /// The database `settings` name: `database-url` (wharf.yml, overridden by
    /// `WHARF_DATABASE_URL`), with its password file.
    func database(_ settings: EffectiveSettings) throws(WharfError) -> HomeDatabase {
        let url = settings["database-url"]
        guard url != "embedded" else { return .embedded }
        var passwordFile: String? = settings["database-password-file"]
        if passwordFile == "none" {
            passwordFile = nil
        } else if let file = passwordFile, !file.hasPrefix("/") {
            passwordFile = "\(path)/\(file)"
        }
        return .postgres(try PostgresLocation(url: url, passwordFile: passwordFile))
    }

    /// Opens the store of `database` as node `node`.
    func open(_ database: HomeDatabase, node: NodeName, lease: Double) throws(WharfError) -> OpenedStore {
        switch database {
        case .embedded:
            return OpenedStore(store: try openRegistry(), nodes: nil, connections: nil)
        case .postgres(let location):
            guard FileManager.default.fileExists(atPath: pki.path) else {
                throw WharfError(
                    .notInitialized, "\(path) is not a Wharf home (no pki/)",
                    fix: "run `wharf init --database URL` first, or point --home (or WHARF_HOME) at an initialised home"
                )
            }
            let store = try PostgresStore.open(location, node: node.rawValue, lease: lease)
            return OpenedStore(store: store, nodes: store, connections: store)
        }
    }
}

extension WharfHome {
    /// Whether a gateway runs on this home now: one holds its lock (SQLite), or a node of
    /// it renewed its heartbeat lately (PostgreSQL).
    func isServed(store: any HomeStore, now: Date = Date()) throws(WharfError) -> Bool {
        guard let nodes = store as? any NodeRegistry else { return HomeLock.isHeld(self) }
        let window = 3 * Double(Gateway.heartbeatInterval.components.seconds)
        return try nodes.nodes().contains { $0.isAlive(at: now, window: window) }
    }
}

/// Where a home's registry is.
enum HomeDatabase: Sendable, Equatable {
    /// SQLite, in the home: one node.
    case embedded
    /// PostgreSQL, shared by every node of the home.
    case postgres(PostgresLocation)
}

extension WharfHome {
    /// Every certificate the home uses or accepts, with when it expires: Wharf's CAs, server
    /// and client certificates, and the identities of `partners` that have an end.
    func certificateExpiries(partners: [Partner]) throws(WharfError) -> [CertificateExpiry] {
        let ca = try pki.loadAuthority().certificate
        let identity = try pki.loadIdentityAuthority()?.certificate
        let server = try pki.loadServer().certificate
        let client = try pki.loadClient().certificate
        var expiries = [CertificateExpiry(kind: .ca, fingerprint: ca.fingerprint.hex, notAfter: ca.notValidAfter)]
        if let identity {
            expiries.append(CertificateExpiry(kind: .identityCA, fingerprint: identity.fingerprint.hex, notAfter: identity.notValidAfter))
        }
        expiries.append(CertificateExpiry(kind: .server, fingerprint: server.fingerprint.hex, notAfter: server.notValidAfter))
        expiries.append(CertificateExpiry(kind: .client, fingerprint: client.fingerprint.hex, notAfter: client.notValidAfter))
        return expiries + partners.flatMap(CertificateExpiry.identities(of:))
    }
}
