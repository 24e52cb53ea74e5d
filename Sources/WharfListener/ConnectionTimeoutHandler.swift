import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// Closes connections from clients that are too slow or idle: no finished TLS handshake
/// within `handshake`, no complete request head within `head` (also between requests on
/// a keep-alive connection), no body bytes for `body` during an upload, and fewer body
/// bytes than `minimumBodyRate` asks for over each `rateWindow` (a client that trickles a
/// byte now and then never trips `body`).
///
/// Sits after the HTTP decoder so it sees both TLS events and request parts. Each cut-off
/// is reported to `onCutOff` (the defender scores all but an idle keep-alive connection).
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Why a connection was closed.
    enum CutOff: Sendable, Equatable {
        /// No finished TLS handshake in time.
        case handshake
        /// No complete first request head in time (slow headers).
        case firstRequestHead
        /// No next request on a keep-alive connection: what an idle client pool does.
        case keepAliveIdle
        /// No body bytes for a while during an upload.
        case bodyStalled
        /// Fewer body bytes than the minimum rate over a window.
        case bodyRate

        /// Whether a client in good standing would not do this.
        var isOffence: Bool { self != .keepAliveIdle }
    }

    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let handshake: TimeAmount?
    private let head: TimeAmount
    private let body: TimeAmount
    private let minimumBodyRate: Int
    private let rateWindow: TimeAmount
    private var timer: Scheduled<Void>?
    private var rateCheck: RepeatedTask?
    private var bytesThisWindow = 0
    private var handshakeDone = false
    private var sawRequest = false
    private let onCutOff: @Sendable (CutOff) -> Void

    /// - Parameters:
    ///   - handshake: `nil` on a channel without TLS: the wait for a request head starts
    ///     at once.
    ///   - minimumBodyRate: bytes per second a body must average over each `rateWindow`;
    ///     0 for no minimum.
    init(
        handshake: TimeAmount?, head: TimeAmount, body: TimeAmount, minimumBodyRate: Int = 0, rateWindow: TimeAmount = .seconds(60),
        onCutOff: @escaping @Sendable (CutOff) -> Void = { _ in }
    ) {
        self.onCutOff = onCutOff
        self.handshake = handshake
        self.head = head
        self.body = body
        self.minimumBodyRate = minimumBodyRate
        self.rateWindow = rateWindow
        self.handshakeDone = handshake == nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armFirst(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armFirst(context: context)
        context.fireChannelActive()
    }

    private func armFirst(context: ChannelHandlerContext) {
        if let handshake {
            arm(handshake, .handshake, context: context)
        } else {
            arm(head, .firstRequestHead, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeDone = true
            arm(head, .firstRequestHead, context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            sawRequest = true
            arm(body, .bodyStalled, context: context)
            startRateCheck(context: context)
        case .body(let chunk):
            arm(body, .bodyStalled, context: context)
            bytesThisWindow += chunk.readableBytes
        case .end:
            cancel()
            stopRateCheck()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // After a response ends, the connection waits for the next request head.
        if case .end = unwrapOutboundIn(data), handshakeDone {
            arm(head, sawRequest ? .keepAliveIdle : .firstRequestHead, context: context)
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        stopRateCheck()
        context.fireChannelInactive()
    }

    private func arm(_ amount: TimeAmount, _ cutOff: CutOff, context: ChannelHandlerContext) {
        cancel()
        let channel = context.channel
        let onCutOff = onCutOff
        timer = context.eventLoop.scheduleTask(in: amount) {
            onCutOff(cutOff)
            channel.close(promise: nil)
        }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }

    private func stopRateCheck() {
        rateCheck?.cancel()
        rateCheck = nil
    }

    private func startRateCheck(context: ChannelHandlerContext) {
        stopRateCheck()
        guard minimumBodyRate > 0 else { return }
        bytesThisWindow = 0
        let channel = context.channel
        let required = Int(Double(minimumBodyRate) * Double(rateWindow.nanoseconds) / 1e9)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let onCutOff = onCutOff
        rateCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: rateWindow, delay: rateWindow) { task in
            if handler.value.bytesThisWindow < required {
                task.cancel()
                onCutOff(.bodyRate)
                channel.close(promise: nil)
            }
            handler.value.bytesThisWindow = 0
        }
    }
}
