export function CampaignsPage(_props: Record<string, unknown>) {
  return <h1>Campaigns</h1>;
}
export function CampaignPage(_p: { id: string }) { return <h1>Campaign</h1>; }
