export { eventually, scaleTestStack, testStack, testStackStatus, type TestStack } from './stack';
export { startPrivateServers, type InfraName, type PrivateServers } from './private-servers';
export {
  call,
  login,
  PASSWORD,
  registerAndLogin,
  uniqueEmail,
  type Reply,
  type TokenPairBody,
} from './api-client';
