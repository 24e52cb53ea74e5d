#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOTLS

/// Acknowledges the client's first request at once instead of after the kernel's delayed
/// ACK (up to 40 ms on Linux).
///
/// In TLS 1.3 the client speaks last in the handshake, and BoringSSL sends its session
/// tickets only with the server's first response, so nothing goes back to carry an ACK
/// for the request's first segment. A client with Nagle's algorithm on (`ab`, plain Java
/// sockets) that writes the head and the body separately holds the body until that ACK
/// comes: every new connection waited 40 ms. `TCP_QUICKACK` set when the handshake
/// completes makes the kernel acknowledge at once; the handler then leaves the pipeline.
final class QuickAckHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            #if os(Linux)
            _ = context.channel.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_QUICKACK)), value: 1)
            #endif
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
