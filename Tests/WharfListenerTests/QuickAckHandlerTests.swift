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

    @Test func itPassesTheHandshakeOnAndLeavesThePipeline() throws {
        let channel = EmbeddedChannel()
        let events = Events()
        try channel.pipeline.syncOperations.addHandler(QuickAckHandler())
        try channel.pipeline.syncOperations.addHandler(events)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.shutdownCompleted)
        #expect(events.seen.count == 2)
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: QuickAckHandler.self) }
        _ = try channel.finish()
    }
}
