#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import NIOTLS
import Testing
@testable import WharfListener

@Suite struct QuickAckHandlerTests {
    /// Counts the user events that reach the end of the pipeline.
    final class Events: ChannelInboundHandler {
        typealias InboundIn = NIOAny
        var seen: [String] = []
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            seen.append("\(event)")
        }
    }

    /// The value of `TCP_QUICKACK` as set on `channel`, if it was.
    static func quickAck(_ channel: EmbeddedChannel) -> SocketOptionValue? {
        channel.options.first { entry in
            guard let option = entry.option as? ChannelOptions.Types.SocketOption else { return false }
            return option.optionLevel == .tcp && option.optionName.rawValue == CInt(TCP_QUICKACK)
        }?.value as? SocketOptionValue
    }

    @Test func itSetsQuickAckWhenTheHandshakeCompletesPassesTheEventOnAndLeavesThePipeline() throws {
        let channel = EmbeddedChannel()
        let events = Events()
        try channel.pipeline.syncOperations.addHandler(QuickAckHandler())
        try channel.pipeline.syncOperations.addHandler(events)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.shutdownCompleted)
        #expect(Self.quickAck(channel) == nil, "only a completed handshake sets it")
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        #expect(Self.quickAck(channel) == 1)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.shutdownCompleted)
        #expect(events.seen.count == 3)
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: QuickAckHandler.self) }
        _ = try channel.finish()
    }
}
