// Ids of CNI attachments, as core derives them (core/ids.ts): stable per
// (network, container, interface), so DEL, CHECK and GC find what ADD made.
export { cniAttachmentId as attachmentId } from '../../../core/ids.js';
