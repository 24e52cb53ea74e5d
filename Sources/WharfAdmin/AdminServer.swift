import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import WharfCore

/// The admin listener: plain HTTP for the machine's own monitoring, never for partners.
///
/// - `GET /metrics`: the Prometheus text format (`GatewayMetrics`), gauges read afresh.
/// - `GET /healthz`: `200` while the process serves.
/// - `GET /readyz`: `200` when every readiness check passes, else `503` with what is wrong.
///
/// It binds to loopback by default; it serves no partner data and takes no input but the
/// path, so it needs no authentication there. Put it behind a firewall if it listens wider.
public struct AdminServer: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// A connection that sends nothing for this long is closed.
        public var idleTimeout: TimeAmount = .seconds(30)

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private let configuration: Configuration
    private let metrics: GatewayMetrics
    private let readings: @Sendable () async throws -> GaugeReadings
    private let readiness: @Sendable () async -> [String]
    private let revocationList: (@Sendable () async throws -> [UInt8])?
    private let logger: Logger
    private let onListening: @Sendable (SocketAddress) -> Void

    /// - Parameters:
    ///   - readings: what the scrape-time gauges say now; a failure answers `/metrics` with `503`.
    ///   - readiness: what keeps the gateway from being ready, in words; empty when it is.
    ///   - revocationList: the CA's CRL (DER), served at `/crl`.
    public init(
        configuration: Configuration, metrics: GatewayMetrics,
        readings: @escaping @Sendable () async throws -> GaugeReadings,
        readiness: @escaping @Sendable () async -> [String],
        revocationList: (@Sendable () async throws -> [UInt8])? = nil,
        logger: Logger, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.readings = readings
        self.readiness = readiness
        self.revocationList = revocationList
        self.logger = logger
        self.onListening = onListening
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    public func run() async throws {
        let idleTimeout = configuration.idleTimeout
        let server: NIOAsyncChannel<Connection, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        try pipeline.addHandler(CloseWhenIdle())
                        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            let address = configuration.host.contains(":") ? "[\(configuration.host)]:\(configuration.port)" : "\(configuration.host):\(configuration.port)"
            throw WharfError(.busy, "cannot listen for admin requests on \(address): \(error)", fix: "choose another address with --admin-listen, or `off`")
        }
        guard let address = server.channel.localAddress else {
            throw WharfError(.systemResources, "the admin listener has no local address")
        }
        logger.info("admin listener up", metadata: ["address": "\(address)"])
        onListening(address)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: Connection) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                for try await part in inbound {
                    switch part {
                    case .head(let received): head = received
                    case .body: continue
                    case .end:
                        guard let request = head else { return }
                        head = nil
                        let reply = await answer(request)
                        var headers = HTTPHeaders([("content-type", reply.contentType), ("content-length", "\(reply.body.count)")])
                        if !request.isKeepAlive { headers.add(name: "connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)))
                        if request.method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))) }
                        try await outbound.write(.end(nil))
                        if !request.isKeepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("admin connection ended", metadata: ["error": "\(error)"])
        }
    }

    struct Reply {
        var status: HTTPResponseStatus
        var contentType = "application/json"
        var body: [UInt8]

        static func json(_ status: HTTPResponseStatus, _ object: [String: any Sendable]) -> Reply {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return Reply(status: status, body: Array(data) + [0x0A])
        }
    }

    func answer(_ request: HTTPRequestHead) async -> Reply {
        guard request.method == .GET || request.method == .HEAD else {
            return .json(.methodNotAllowed, ["error": "method_not_allowed", "message": "the admin listener answers GET and HEAD only"])
        }
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        switch path {
        case "/metrics":
            do {
                let text = metrics.scrape(try await readings())
                return Reply(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: text)
            } catch {
                logger.error("metrics not read", metadata: ["error": "\(error)"])
                return .json(.serviceUnavailable, ["error": "unreadable", "message": "the store cannot be read now: \(error)"])
            }
        case "/healthz":
            return .json(.ok, ["status": "serving"])
        case "/readyz":
            let problems = await readiness()
            return .json(problems.isEmpty ? .ok : .serviceUnavailable, ["ready": problems.isEmpty, "problems": problems])
        case "/crl":
            guard let revocationList else {
                return .json(.notFound, ["error": "not_found", "message": "this admin listener serves no CRL"])
            }
            do {
                return Reply(status: .ok, contentType: "application/pkix-crl", body: try await revocationList())
            } catch {
                logger.error("CRL not made", metadata: ["error": "\(error)"])
                return .json(.serviceUnavailable, ["error": "unreadable", "message": "the CRL cannot be made now: \(error)"])
            }
        default:
            return .json(.notFound, ["error": "not_found", "message": "the admin listener serves /metrics, /healthz, /readyz and /crl"])
        }
    }
}

/// Closes a connection that `IdleStateHandler` found idle.
private final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
