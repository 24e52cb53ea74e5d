import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Testing
import WharfCommands
import WharfCore
import WharfDelivery
import WharfListener
import WharfPKI
import WharfSpool
import WharfStore

/// A Wharf home with partner `acme` (certificate issued), served in-process on a free
/// loopback port. Changes to the registry go through the real `wharf` binary.
public struct TestGateway: Sendable {
    public let fixture: WharfHomeFixture
    public let port: Int
    /// The admin listener's port, when started with `admin`.
    public let adminPort: Int?
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public var home: String { fixture.home }
    public var spool: Spool { Spool(root: "\(home)/spool") }
    public var registry: Registry { get throws { try Self.registry(home: home) } }

    public static func registry(home: String) throws -> Registry {
        try Registry.open(at: "\(home)/wharf.sqlite")
    }

    /// - Parameters:
    ///   - admin: run the admin listener too, on a free loopback port (`adminPort`), with
    ///     this free-space threshold.
    public static func start(
        fixture: WharfHomeFixture? = nil, admin minimumFreeSpace: Int64? = nil, delivery: DeliveryConfiguration = DeliveryConfiguration(),
        configure: (inout ListenerConfiguration) -> Void = { _ in }
    ) async throws -> TestGateway {
        let fixture = try fixture ?? Self.homeWithAcme()
        var configuration = ListenerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        // The suite's clients all connect from 127.0.0.1, many refused on purpose; the
        // defender's own tests attack from other loopback addresses and clear this.
        configuration.defenderAllow = [try AddressRange("127.0.0.1")]
        configure(&configuration)
        var logger = Logger(label: "wharf.test")
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream.makeStream(of: (admin: Bool, port: Int).self)
        // Built as `wharf serve` builds it: the same recovery, worker and intake.
        let gateway = try Gateway.open(WharfHome(path: fixture.home), logger: logger)
        let admin = minimumFreeSpace.map { Gateway.AdminSettings(listen: .init(host: "127.0.0.1", port: 0), minimumFreeSpace: $0) }
        let services = try gateway.services(
            listener: configuration, delivery: delivery, admin: admin,
            onListening: { continuation.yield((false, $0.port ?? 0)) },
            onAdminListening: { continuation.yield((true, $0.port ?? 0)) }
        )
        let group = ServiceGroup(services: services, logger: logger)
        let task = Task {
            defer { continuation.finish() }
            // The gateway (and its lock on the home) lives as long as its services run.
            try await group.run()
            withExtendedLifetime(gateway) {}
        }
        var (port, adminPort): (Int?, Int?) = (nil, nil)
        for await (isAdmin, bound) in ports {
            if isAdmin { adminPort = bound } else { port = bound }
            if port != nil && (admin == nil || adminPort != nil) { break }
        }
        guard let port else {
            try await task.value
            throw Wait.TimedOut(description: "the gateway stopped before it listened")
        }
        return TestGateway(fixture: fixture, port: port, adminPort: adminPort, group: group, task: task)
    }

    /// A home as `wharf init` made them before Wharf had two CAs: one CA (`pki/ca.crt`)
    /// signs partners' certificates and Wharf's own, and there is no identity CA.
    public static func homeWithOneCA() throws -> WharfHomeFixture {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        let pki = PKIDirectory(path: "\(fixture.home)/pki")
        let authority = try pki.loadAuthority()
        let server = try pki.load(.server)
        try pki.replace(.server, with: try authority.issueServerCertificate(
            hostNames: server.certificate.alternativeNames ?? ["localhost"], key: server.privateKey
        ))
        let client = try pki.load(.client)
        try pki.replace(.client, with: try authority.reissueClientCertificate(client.certificate, key: client.privateKey))
        try FileManager.default.removeItem(atPath: pki.identityCertificatePath)
        try FileManager.default.removeItem(atPath: pki.identityKeyPath)
        return fixture
    }

    public static func homeWithAcme() throws -> WharfHomeFixture {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        try fixture.succeed("partner", "add", "acme", "--display-name", "Acme Corp")
        try fixture.succeed("partner", "issue", "acme")
        return fixture
    }

    /// Makes home `sender` send to this gateway: partner `name` here, with a bundle
    /// issued, and partner `receiver` in `sender` pointing at this gateway's inbox with
    /// its CA, its server key's pin and that bundle.
    public func accept(from sender: WharfHomeFixture, as name: String = "sender", calledThere receiver: String = "receiver") async throws {
        try await fixture.succeed("partner", "add", name)
        try await fixture.succeed("partner", "issue", name)
        let bundle = "\(home)/partners/\(name)"
        let pin = try await Command.runAsync("sh", ["-c",
            "openssl x509 -pubkey -noout -in '\(home)/pki/server.crt' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
        try await sender.succeed(
            "partner", "add", receiver, "--url", url("/inbox"), "--server-ca", "\(bundle)/ca.crt",
            "--client-cert", "\(bundle)/\(name).crt", "--client-key", "\(bundle)/\(name).key",
            "--pin", "sha256//" + pin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        )
    }

    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    public func url(_ path: String) -> String { "https://localhost:\(port)\(path)" }

    /// The certificate, key and CA options of partner `partner`'s bundle.
    public func credentials(_ partner: String = "acme") -> [String] {
        let bundle = "\(home)/partners/\(partner)"
        return ["--cert", "\(bundle)/\(partner).crt", "--key", "\(bundle)/\(partner).key", "--cacert", "\(bundle)/ca.crt"]
    }

    /// `openssl s_client` connected to the gateway as `partner`, then `extra`.
    public func sClient(_ extra: [String] = ["-quiet"], partner: String = "acme") -> [String] {
        let bundle = "\(home)/partners/\(partner)"
        return ["s_client", "-connect", "127.0.0.1:\(port)", "-cert", "\(bundle)/\(partner).crt",
                "-key", "\(bundle)/\(partner).key", "-CAfile", "\(bundle)/ca.crt"] + extra
    }

    /// Runs curl with `arguments`; the status is the last line of its output.
    public func curl(_ arguments: [String], as partner: String? = "acme") async throws -> HTTPResult {
        let identity = partner.map(credentials) ?? ["--cacert", "\(home)/pki/identity-ca.crt"]
        let result = try await Command.runAsync("curl", ["-sS", "-w", "\n%{http_code}"] + identity + arguments)
        return HTTPResult(result)
    }

    /// `curl --upload-file FILE URL/inbox/NAME`.
    public func put(_ file: String, as name: String, partner: String? = "acme", headers: [String] = []) async throws -> HTTPResult {
        try await curl(headers.flatMap { ["-H", $0] } + ["--upload-file", file, url("/inbox/\(name)")], as: partner)
    }

    /// Files in the partner inboxes and in the staging directory, and the receipt rows:
    /// what a refusal must leave as it was.
    public func spoolState() throws -> [String] {
        var entries: [String] = []
        let root = "\(home)/spool"
        if let enumerator = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in enumerator { entries.append(relative) }
        }
        return entries.sorted() + (try fixture.snapshot(excludingTables: ["audit_event", "sqlite_sequence"]))
    }

    /// Writes `size` random bytes to a new file and returns its path and SHA-256.
    public func randomFile(_ name: String, size: Int) throws -> (path: String, sha256: String) {
        try TestGatewayFiles(fixture: fixture).randomFile(name, size: size)
    }
}

/// What curl printed: the body, then the status on the last line.
public struct HTTPResult: Sendable {
    public let status: Int
    public let body: String
    public let curlStatus: Int32
    public let stderr: String

    public init(_ result: CommandResult) {
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        status = Int(lines.popLast() ?? "") ?? 0
        body = lines.joined(separator: "\n")
        curlStatus = result.status
        stderr = result.stderr
    }

    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }
}
