import NIOCore
import NIOHTTP1

/// The HTTP/1.1 layer of a connection, whatever carries it: the decoder and encoder, NIO's
/// handling of malformed requests, the timeouts, and the async channel the request loop
/// (`InboxConnection`) reads. `TLSChannel` wraps it for the listener; tests put it on a
/// plain channel.
enum HTTPChannel {
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// Adds the HTTP handlers to `channel`'s pipeline and wraps it. Call it on the
    /// channel's event loop.
    ///
    /// - Parameter secured: the channel runs a TLS handshake first, which the handshake
    ///   timeout then covers; without it the request-head timeout starts at once.
    ///   - onCutOff: told when the timeouts close the connection, and why.
    static func configure(
        _ channel: any Channel, configuration: ListenerConfiguration, secured: Bool,
        onCutOff: @escaping @Sendable (ConnectionTimeoutHandler.CutOff) -> Void = { _ in }
    ) throws -> Connection {
        let pipeline = channel.pipeline.syncOperations
        // No NIO error handler: it would answer a malformed request with its own 400 while
        // InboxConnection, which already has the head, answers too (two responses, which
        // NIO's pipeline handler traps on). InboxConnection answers parse errors itself.
        try pipeline.configureHTTPServerPipeline(withErrorHandling: false)
        try pipeline.addHandler(ConnectionTimeoutHandler(
            handshake: secured ? configuration.handshakeTimeout : nil,
            head: configuration.requestHeadTimeout,
            body: configuration.bodyProgressTimeout,
            minimumBodyRate: configuration.minimumBodyRate, rateWindow: configuration.bodyRateWindow,
            onCutOff: onCutOff
        ))
        return try Connection(
            wrappingChannelSynchronously: channel,
            configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 16))
        )
    }
}
