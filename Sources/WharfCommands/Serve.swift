import ArgumentParser
import Foundation
import Logging
import NIOCore
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

    @Option(help: ArgumentHelp("Address and port to listen on; port 0 picks a free one.", valueName: "host:port"))
    var listen: String = "0.0.0.0:8443"

    @Option(help: ArgumentHelp("Seconds a client may take to finish the TLS handshake.", valueName: "seconds"))
    var handshakeTimeout: Int = 10

    @Option(help: ArgumentHelp("Seconds a connection may wait before sending a complete request head.", valueName: "seconds"))
    var headTimeout: Int = 30

    @Option(help: ArgumentHelp("Seconds an upload may go without body progress.", valueName: "seconds"))
    var bodyTimeout: Int = 60

    @Option(help: ArgumentHelp(
        "Address and port of the admin listener (plain HTTP: /metrics, /healthz, /readyz), or `off`.", valueName: "host:port|off"
    ))
    var adminListen: String = "127.0.0.1:9464"

    @Option(help: ArgumentHelp("Free space on the spool below which /readyz answers 503 (such as 512MiB).", valueName: "size"))
    var minFreeSpace: String = "256MiB"

    @OptionGroup(title: "Delivery") var delivery: DeliveryOptions

    @OptionGroup(title: "Logging") var logging: LogOptions

    func run() async throws {
        let (host, port) = try Self.parseListen(listen)
        let deliveryConfiguration = try delivery.configuration()
        for (value, option) in [(handshakeTimeout, "--handshake-timeout"), (headTimeout, "--head-timeout"), (bodyTimeout, "--body-timeout")] where value <= 0 {
            throw WharfError.invalid("\(option) must be at least 1 second", fix: "give a whole number of seconds")
        }
        let admin = try adminSettings()
        logging.bootstrap()
        let logger = Logger(label: "wharf")
        let gateway = try Gateway.open(home.resolved, logger: logger)

        var configuration = ListenerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.handshakeTimeout = .seconds(Int64(handshakeTimeout))
        configuration.requestHeadTimeout = .seconds(Int64(headTimeout))
        configuration.bodyProgressTimeout = .seconds(Int64(bodyTimeout))

        let services = try gateway.services(
            listener: configuration, delivery: deliveryConfiguration, admin: admin,
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

    func adminSettings() throws(WharfError) -> Gateway.AdminSettings? {
        let minimum: Int64
        do { minimum = try ByteSize.parse(minFreeSpace) } catch {
            throw .invalid("--min-free-space '\(minFreeSpace)' is not a size", fix: "write it as 512MiB, 2GiB or 0")
        }
        guard adminListen.lowercased() != "off" else { return nil }
        let (host, port) = try Self.parseListen(adminListen, option: "--admin-listen")
        return Gateway.AdminSettings(listen: .init(host: host, port: port), minimumFreeSpace: minimum)
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
    static func parseListen(_ text: String, option: String = "--listen") throws(WharfError) -> (String, Int) {
        let invalid = WharfError.invalid("\(option) '\(text)' is not HOST:PORT", fix: "write it as 0.0.0.0:8443, [::]:8443 or 127.0.0.1:0")
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw invalid
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }
}
