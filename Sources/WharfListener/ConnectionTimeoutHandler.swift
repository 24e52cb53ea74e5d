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
/// Sits after the HTTP decoder so it sees both TLS events and request parts.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
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

    /// - Parameters:
    ///   - handshake: `nil` on a channel without TLS: the wait for a request head starts
    ///     at once.
    ///   - minimumBodyRate: bytes per second a body must average over each `rateWindow`;
    ///     0 for no minimum.
    init(handshake: TimeAmount?, head: TimeAmount, body: TimeAmount, minimumBodyRate: Int = 0, rateWindow: TimeAmount = .seconds(60)) {
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
        arm(handshake ?? head, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeDone = true
            arm(head, context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            arm(body, context: context)
            startRateCheck(context: context)
        case .body(let chunk):
            arm(body, context: context)
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
            arm(head, context: context)
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        stopRateCheck()
        context.fireChannelInactive()
    }

    private func arm(_ amount: TimeAmount, context: ChannelHandlerContext) {
        cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: amount) {
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
        rateCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: rateWindow, delay: rateWindow) { _ in
            if handler.value.bytesThisWindow < required { channel.close(promise: nil) }
            handler.value.bytesThisWindow = 0
        }
    }
}
