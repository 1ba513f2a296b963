package emulator

// tcGatewayPublish answers a Tencent gateway's PUBLISH on its
// $gateway/operation topic; ok false when the topic is not one.
func (e *Emulator) tcGatewayPublish(s *mqttSession, topic string, payload []byte) (replyTopic string, reply []byte, ok bool) {
	return "", nil, false
}
