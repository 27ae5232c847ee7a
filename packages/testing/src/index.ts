export { eventually, testStack, testStackStatus, type TestStack } from './stack';
export { startPrivateServers, type InfraName, type PrivateServers } from './private-servers';
