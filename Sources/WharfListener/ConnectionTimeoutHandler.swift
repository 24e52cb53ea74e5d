import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// Closes connections from clients that are too slow or idle: no finished TLS handshake
/// within `handshake`, no complete request head within `head` (also between requests on
/// a keep-alive connection), no body bytes for `body` during an upload.
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
    private var timer: Scheduled<Void>?
    private var handshakeDone = false

    /// - Parameter handshake: `nil` on a channel without TLS: the wait for a request
    ///   head starts at once.
    init(handshake: TimeAmount?, head: TimeAmount, body: TimeAmount) {
        self.handshake = handshake
        self.head = head
        self.body = body
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
        case .head, .body: arm(body, context: context)
        case .end: cancel()
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
}
