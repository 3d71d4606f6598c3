// Drives the rulesforce emulator with jsforce, a published Salesforce client, to show
// the emulator speaks the real protocol. Run by tests/jsforce.rs; prints one JSON line.
const jsforce = require('jsforce');

async function main() {
  const conn = new jsforce.Connection({
    oauth2: {
      loginUrl: process.env.LOGIN_URL,
      clientId: 'rulesforce-demo',
      clientSecret: 'demo-secret',
      redirectUri: 'http://localhost:1717/callback',
    },
    version: '66.0',
  });
  const user = await conn.login('demo@example.com', 'demo-password' + 'demo-token');

  const created = await conn.sobject('Campaign').create({ Name: 'jsforce Campaign', Status: 'Planned' });
  await conn.sobject('Campaign').update({ Id: created.id, Status: 'In Progress' });
  const queried = await conn.query(`SELECT Id, Name, Status FROM Campaign WHERE Id = '${created.id}'`);

  const leads = await conn.query('SELECT Id FROM Lead ORDER BY Email LIMIT 3');
  const members = await conn.sobject('CampaignMember').create(
    leads.records.map((lead) => ({ CampaignId: created.id, LeadId: lead.Id, Status: 'Sent' })),
    { allOrNone: false },
  );
  const duplicate = await conn.sobject('CampaignMember').create(
    [{ CampaignId: created.id, LeadId: leads.records[0].Id, Status: 'Responded' }],
    { allOrNone: false },
  );
  const memberCount = await conn.query(`SELECT Id FROM CampaignMember WHERE CampaignId = '${created.id}'`);

  await conn.sobject('Campaign').destroy(created.id);
  const afterDelete = await conn.query(`SELECT Id FROM Campaign WHERE Id = '${created.id}'`);

  console.log(JSON.stringify({
    organizationId: user.organizationId,
    campaignId: created.id,
    queried: queried.records.map((r) => ({ Name: r.Name, Status: r.Status })),
    members: members.map((m) => m.success),
    duplicate: duplicate.map((d) => (d.errors[0] || {}).statusCode || (d.errors[0] || {}).errorCode || d.errors[0]),
    memberCount: memberCount.totalSize,
    afterDelete: afterDelete.totalSize,
  }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
