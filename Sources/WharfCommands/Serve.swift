import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WharfCore
import WharfDelivery
import WharfListener

/// `wharf serve`: the gateway.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: the mutual-TLS inbox, the delivery worker, the drop folder and the schedules.",
        discussion: """
            Prints `Listening on HOST:PORT` once ready (with --listen HOST:0, the port chosen). \
            Partners, certificates and trust changed with the other commands apply to the next \
            request, without a restart. SIGTERM or SIGINT stop accepting, let uploads in flight \
            finish, then exit 0.
            """
    )

    @OptionGroup var home: HomeOptions

    @OptionGroup(title: "Listeners") var listeners: ListenerOptions

    @OptionGroup(title: "Delivery") var delivery: DeliveryOptions

    @OptionGroup(title: "Several nodes") var node: NodeOptions

    @OptionGroup(title: "Logging") var logging: LogOptions

    /// Every option given, by setting.
    var flags: [String: String] {
        listeners.flags.merging(delivery.flags) { $1 }.merging(logging.flags) { $1 }.merging(node.flags) { $1 }
    }

    func run() async throws {
        let home = home.resolved
        let settings = try EffectiveSettings.resolve(
            for: .serve, flags: flags, environment: ProcessInfo.processInfo.environment,
            file: try ConfigurationFile.load(home: home)
        )
        let listener = try ListenerOptions.listener(settings)
        let admin = try ListenerOptions.admin(settings)
        LogOptions.bootstrap(settings)
        let logger = Logger(label: "wharf")
        // Opening blocks (the registry, the spool's recovery): on the thread pool.
        let gateway = try await NIOThreadPool.singleton.runIfActive { try Gateway.open(home, settings: settings, logger: logger) }

        let services = try gateway.services(
            listener: listener, delivery: DeliveryOptions.configuration(settings), admin: admin,
            auditRetentionDays: settings.int("audit-retention-days"),
            onListening: { address in
                FileHandle.standardOutput.write(Data("Listening on \(InboundServer.describe(address))\n".utf8))
                SystemdNotify.send("READY=1")
            },
            onAdminListening: { address in
                FileHandle.standardOutput.write(Data("Admin listening on \(InboundServer.describe(address))\n".utf8))
            }
        )
        let group = ServiceGroup(
            services: services + [SystemdStoppingNotice()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        try await group.run()
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
    static func parseListen(_ text: String) throws(WharfError) -> (String, Int) {
        let invalid = WharfError.invalid("'\(text)' is not HOST:PORT", fix: "write it as 0.0.0.0:8443, [::]:8443 or 127.0.0.1:0")
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw invalid
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }
}

/// The listeners' options of `serve`. Each may also be set in the environment or in
/// `wharf.yml` (see `Setting`); a flag wins.
struct ListenerOptions: ParsableArguments {
    @Option(help: .setting("listen", valueName: "host:port")) var listen: String?
    @Option(help: .setting("handshake-timeout", valueName: "seconds")) var handshakeTimeout: String?
    @Option(help: .setting("head-timeout", valueName: "seconds")) var headTimeout: String?
    @Option(help: .setting("body-timeout", valueName: "seconds")) var bodyTimeout: String?
    @Option(help: .setting("partial-upload-max-age", valueName: "seconds")) var partialUploadMaxAge: String?
    @Option(help: .setting("admin-listen", valueName: "host:port|off")) var adminListen: String?
    @Option(help: .setting("min-free-space", valueName: "size")) var minFreeSpace: String?
    @Flag(inversion: .prefixedNo, help: .setting("send-ca-names", valueName: "")) var sendCANames: Bool?
    @Option(help: .setting("min-body-rate", valueName: "size")) var minBodyRate: String?
    @Option(help: .setting("max-connections-per-address", valueName: "n")) var maxConnectionsPerAddress: String?
    @Option(help: .setting("max-connections", valueName: "n")) var maxConnections: String?
    @Option(help: .setting("defender", valueName: "on|off")) var defender: String?
    @Option(help: .setting("defender-allow", valueName: "cidr,...")) var defenderAllow: String?
    @Option(help: .setting("audit-retention-days", valueName: "days")) var auditRetentionDays: String?

    var flags: [String: String] {
        [
            "listen": listen, "handshake-timeout": handshakeTimeout, "head-timeout": headTimeout,
            "body-timeout": bodyTimeout, "partial-upload-max-age": partialUploadMaxAge, "admin-listen": adminListen, "min-free-space": minFreeSpace,
            "send-ca-names": sendCANames.map { $0 ? "true" : "false" },
            "max-connections-per-address": maxConnectionsPerAddress, "max-connections": maxConnections,
            "min-body-rate": minBodyRate, "defender": defender, "defender-allow": defenderAllow,
            "audit-retention-days": auditRetentionDays,
        ].compactMapValues { $0 }
    }

    static func listener(_ settings: EffectiveSettings) throws(WharfError) -> ListenerConfiguration {
        let (host, port) = try Serve.parseListen(settings["listen"])
        var configuration = ListenerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.handshakeTimeout = .seconds(settings.seconds("handshake-timeout"))
        configuration.requestHeadTimeout = .seconds(settings.seconds("head-timeout"))
        configuration.bodyProgressTimeout = .seconds(settings.seconds("body-timeout"))
        configuration.partialUploadMaxAge = .seconds(settings.seconds("partial-upload-max-age"))
        configuration.sendCANames = settings["send-ca-names"] == "true"
        configuration.maxConnectionsPerAddress = settings.int("max-connections-per-address")
        configuration.maxConnections = settings.int("max-connections")
        configuration.minimumBodyRate = Int(settings.size("min-body-rate"))
        configuration.defender = settings["defender"] == "on"
        configuration.defenderAllow = settings["defender-allow"] == "none" ? [] : try AddressRange.list(settings["defender-allow"])
        return configuration
    }

    static func admin(_ settings: EffectiveSettings) throws(WharfError) -> Gateway.AdminSettings? {
        guard settings["admin-listen"].lowercased() != "off" else { return nil }
        let (host, port) = try Serve.parseListen(settings["admin-listen"])
        return Gateway.AdminSettings(listen: .init(host: host, port: port), minimumFreeSpace: settings.size("min-free-space"))
    }
}

extension ArgumentHelp {
    /// The help of setting `key`, with its default and where else it can be set.
    static func setting(_ key: String, valueName: String) -> ArgumentHelp {
        guard let setting = Setting.named(key) else { preconditionFailure("no setting \(key)") }
        return ArgumentHelp(
            "\(setting.help) Default \(setting.defaultValue); also \(setting.environmentVariable) or `\(key):` in wharf.yml.",
            valueName: valueName
        )
    }
}
